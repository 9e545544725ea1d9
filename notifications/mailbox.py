"""The demo mailbox: a local SMTP catcher that keeps each message as a file under RUJUKAN_HOME."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from models.settings import Settings, make_private_dir, open_private

# aiosmtpd logs each conversation (addresses, sizes) at INFO; the mailbox keeps the messages itself.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def mailbox_folder(settings: Settings) -> Path:
    """Where the demo mailbox keeps received messages (RUJUKAN_HOME/mailbox)."""
    return settings.home / "mailbox"


class _Keeper:
    """aiosmtpd handler that writes every accepted message to a .eml file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, _server, _session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        final = self.folder / f"{stamp}-{secrets.token_hex(3)}.eml"
        partial = final.with_suffix(".part")
        # Written then renamed, so a reader never sees half a message; owner-only from its first
        # byte, as a message holds live links.
        with open_private(partial, "xb") as out:
            out.write(envelope.original_content or envelope.content)
        os.replace(partial, final)
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    """A running demo mail catcher; stop() ends it."""

    host: str
    port: int
    folder: Path
    _controller: Controller

    def stop(self) -> None:
        """Stop listening; the stored messages stay."""
        self._controller.stop()


def start_mailbox(
    settings: Settings, *, host: str = "127.0.0.1", port: int | None = None
) -> Mailbox:
    """Start the SMTP catcher on host:port (default: the mailbox port) in a background thread."""
    folder = make_private_dir(mailbox_folder(settings), tighten_existing=True)
    chosen = settings.mailbox_port if port is None else port
    controller = Controller(_Keeper(folder), hostname=host, port=chosen)
    controller.start()
    return Mailbox(host=host, port=controller.port, folder=folder, _controller=controller)


def read_mailbox(settings: Settings) -> list[EmailMessage]:
    """Every message in the demo mailbox, oldest first."""
    folder = mailbox_folder(settings)
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(folder.glob("*.eml"))
    ]
