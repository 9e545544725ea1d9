"""The flows suite uses the session's one Prefect test server (tests/conftest.py)."""
