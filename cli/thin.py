"""A step command as a thin client of a running `rujukan serve` of the same home.

`rujukan step complete ...` in a fresh interpreter spends about a second importing the engine
(SQLModel, pydantic, the models, Apprise) for a transaction of a few milliseconds. When serve
runs on the home, it already holds all of that: the command sends its arguments over an
owner-only Unix socket in the home (RUJUKAN_HOME/commands.sock, 0600 in the 0700 home), serve
runs the same function the command would (cli/step_actions.py, through
cli/command_socket.py), and the command prints serve's answer with serve's exit code.

When no serve answers (none runs, a stale socket of a killed serve, another user's or a foreign
file, a serve with other settings or another version), the command does the work itself, as
before. This module imports the standard library only: the thin path loads no engine
(tests/core/test_cli_imports.py holds that line).

The protocol is one JSON line each way. Request: {"protocol", "env", "command", "args"}, where
"env" is a digest of the RUJUKAN_* variables besides RUJUKAN_HOME (serve answers only a command
that would see the settings serve sees) and "args" are the command's parameters by name. Reply:
{"taken": true} the moment serve starts on it, then {"out", "err", "code"}; or
{"fallback": why} instead when serve leaves the command to the caller. A connection that ends
before "taken" did nothing (the command is done here); after it, the person is told that the
action may or may not have been done.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

PROTOCOL = 1
SOCKET_NAME = "commands.sock"
CONNECT_TIMEOUT = 1.0  # serve accepts at once, or it is not there to answer
# An action takes milliseconds plus the send budget (2 s by default); beyond this, something is
# wrong with serve and the person is told so.
REPLY_TIMEOUT = 60.0
MAX_LINE = 1 << 16

# A reply from serve: what to print on stdout and stderr, and the exit code.
Reply = dict


def home_of(environ: Mapping[str, str]) -> Path:
    """RUJUKAN_HOME as models.settings.home_from_env resolves it (default ./var), without
    loading the settings (pydantic)."""
    return Path(environ.get("RUJUKAN_HOME") or "var").expanduser().absolute()


def socket_path(home: Path) -> Path:
    """The command socket of a home."""
    return home / SOCKET_NAME


# Settings that may name a path relative to where a command starts (models.settings makes them
# absolute there): with one of them relative, the folder is part of the settings.
PATH_SETTINGS = (
    "RUJUKAN_DATABASE_URL",
    "RUJUKAN_PATHWAYS_DIR",
    "RUJUKAN_AGENCIES_FILE",
    "RUJUKAN_APPRISE_CONFIG",
)


def fingerprint(environ: Mapping[str, str]) -> str:
    """A digest of the RUJUKAN_* variables besides the home (and of the folder, if one of them
    is a relative path): serve answers a command only if the command would have read the same
    settings (the home's settings file is shared by both)."""
    items = sorted((k, v) for k, v in environ.items() if k.startswith("RUJUKAN_"))
    items = [(k, v) for k, v in items if k != "RUJUKAN_HOME"]
    if any(_relative(k, v) for k, v in items if k in PATH_SETTINGS):
        items.append(("(folder)", os.getcwd()))
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def _relative(name: str, value: str) -> bool:
    if name == "RUJUKAN_DATABASE_URL":  # sqlite:///rel.db is relative, sqlite:////abs.db is not
        if not value.startswith("sqlite"):
            return False
        _, _, path = value.partition(":///")
        return bool(path) and path != ":memory:" and not path.startswith("/")
    return bool(value) and not os.path.isabs(os.path.expanduser(value))


class LostReply(Exception):
    """serve took the command but gave no answer: it may or may not have been done."""


def forward(command: str, args: dict[str, object]) -> Reply | None:
    """Ask the serve of this home to run `rujukan step COMMAND`; its reply, or None if no serve
    answers (the caller does the work). Raises LostReply if serve took the command and gave no
    answer: doing it again here could act twice."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    path = socket_path(home_of(os.environ))
    try:
        info = os.stat(path)
    except OSError:
        return None  # no serve
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        return None  # not serve's socket: send nothing to it
    request = {
        "protocol": PROTOCOL,
        "env": fingerprint(os.environ),
        "command": command,
        "args": args,
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(CONNECT_TIMEOUT)
        try:
            conn.connect(str(path))
        except OSError:
            return None  # a stale socket (serve was killed), or serve stopping
        with conn.makefile("rb") as stream:
            try:
                conn.sendall(json.dumps(request).encode() + b"\n")
                first = _line(stream)  # {"taken": true} before serve acts, or {"fallback": why}
            except (OSError, ValueError):
                return None  # serve acts only after saying it takes the command: nothing done
            if first.get("taken") is not True:
                return None
            conn.settimeout(REPLY_TIMEOUT)
            try:
                reply = _line(stream)
            except (OSError, ValueError) as exc:
                raise LostReply(type(exc).__name__) from None
    if not {"out", "err", "code"} <= reply.keys():
        raise LostReply("no answer")
    return reply


def _line(stream) -> dict:
    """One JSON object on one line; ValueError if the line is not one (or the stream ended)."""
    data = json.loads(stream.readline(MAX_LINE))
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data
