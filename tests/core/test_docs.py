"""The README documents every setting and every command; every template renders in every locale."""

from __future__ import annotations

import re

from typer.main import get_command

from cli.main import app
from models.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_setting_is_described_and_documented():
    missing = []
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        if f"RUJUKAN_{name.upper()}" not in README:
            missing.append(f"RUJUKAN_{name.upper()}")
    assert missing == []


def _commands(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path)


def test_every_command_appears_in_the_readme():
    text = re.sub(r"\s+", " ", README)
    missing = [c for c in _commands(get_command(app)) if f"rujukan {c}" not in text]
    assert missing == []
