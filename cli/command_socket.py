"""serve's side of the thin command line (cli/thin.py): the home's command socket.

`rujukan serve` opens RUJUKAN_HOME/commands.sock (0600, in the 0700 home; a peer of another
user is refused by its credentials too) and answers `rujukan step ...` commands of the same
settings: each in a thread of its own, with a Context of its own, through the same function the
command runs (cli/step_actions.py): same transaction, same audit actor, same refusal entry,
same sending after the commit. Nothing is printed: the output travels back in the reply.
An error is told as the command line tells it (cli.context.error_line), never with the request.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cli.context import Context, error_line
from cli.step_actions import ACTIONS
from cli.thin import MAX_LINE, PROTOCOL, fingerprint, socket_path

if TYPE_CHECKING:
    from models.settings import Settings

log = logging.getLogger("rujukan.commands")


class CommandSocket(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The home's command socket; `close()` stops it, lets commands under way finish and
    removes the socket file."""

    daemon_threads = False
    block_on_close = True  # close() waits for the commands under way

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        from models.catalog import load_catalog

        self.settings = settings
        self.env = fingerprint(environ)
        self.catalog = load_catalog(settings)  # read-only, shared by every command
        self.path = socket_path(settings.home)
        super().__init__(str(self.path), _Handler, bind_and_activate=False)
        try:
            self.path.unlink(missing_ok=True)  # a stale socket of a killed serve
            self.server_bind()
            os.chmod(self.path, 0o600)
            self.server_activate()
        except BaseException:
            self.server_close()
            raise
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 1.0}, name="commands", daemon=True
        )

    def answer(self, request: object, taken) -> dict:
        """The reply to one request; `taken()` is called right before the action starts."""
        from models.errors import RujukanError

        if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
            return {"fallback": "another version of the protocol"}
        if request.get("env") != self.env:
            return {"fallback": "the command's RUJUKAN_ settings differ from serve's"}
        command, args = request.get("command"), request.get("args")
        action = ACTIONS.get(command) if isinstance(command, str) else None
        if action is None or not _fits(action, args):
            return {"fallback": "not a command serve runs"}
        ctx = Context(self.settings)
        ctx.catalog = self.catalog
        taken()
        try:
            done = action(ctx, **args)
        except RujukanError as exc:
            return {"out": "", "err": [error_line(exc)], "code": exc.exit_code}
        except Exception as exc:  # noqa: BLE001 - the command is told; serve goes on
            log.warning("`rujukan step %s` failed in serve: %s", command, type(exc).__name__)
            return {
                "out": "",
                "err": [f"error: serve could not run the command ({type(exc).__name__})"],
                "code": 1,
            }
        return {"out": done.out, "err": done.err, "code": 0}

    def handle_error(self, request, client_address) -> None:  # noqa: ARG002
        """A connection that failed (a command interrupted mid-answer): one line, no traceback."""
        log.warning("a command's connection failed: %s", sys.exc_info()[0].__name__)

    def close(self) -> None:
        """Stop answering, wait for the commands under way, remove the socket file."""
        if self.thread.is_alive():
            self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)


def _fits(action, args: object) -> bool:
    """True if `args` are parameters of `action` by name, each a string, a flag or None."""
    if not isinstance(args, dict):
        return False
    if not all(isinstance(v, str | bool) or v is None for v in args.values()):
        return False
    try:
        inspect.signature(action).bind(None, **args)
    except TypeError:
        return False
    return True


class _Handler(socketserver.StreamRequestHandler):
    server: CommandSocket

    def handle(self) -> None:
        if not _same_user(self.connection):
            return
        line = self.rfile.readline(MAX_LINE)
        try:
            request = json.loads(line)
        except ValueError:
            return  # a partial or foreign line: nothing done, the command does it itself

        def taken() -> None:
            self._send({"taken": True})

        reply = self.server.answer(request, taken)
        self._send(reply)

    def _send(self, data: dict) -> None:
        self.wfile.write(json.dumps(data).encode() + b"\n")
        self.wfile.flush()


def _same_user(conn: socket.socket) -> bool:
    """True if the peer runs as serve's user (Linux's SO_PEERCRED; elsewhere the 0600 socket
    in the 0700 home is the guard)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    size = struct.calcsize("3i")
    _pid, uid, _gid = struct.unpack(
        "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    )
    return uid == os.getuid()


def start_command_socket(settings: Settings, environ: Mapping[str, str]) -> CommandSocket | None:
    """Open the home's command socket and answer on it in a thread; None, with the reason on
    stderr, if it cannot (commands then do their work themselves, as without serve)."""
    import typer

    path = socket_path(settings.home)
    if _answers(path):
        typer.echo(f"{path} is answered by another serve of this home: not opened", err=True)
        return None
    try:
        server = CommandSocket(settings, environ)
    except OSError as exc:
        typer.echo(
            f"command socket not opened ({type(exc).__name__}); commands run on their own",
            err=True,
        )
        return None
    server.thread.start()
    return server


def _answers(path) -> bool:
    """True if something listens on the socket at `path` (a live serve), not a stale file."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
