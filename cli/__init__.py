"""The `rujukan` command line: it parses arguments and calls the engine, nothing more."""
