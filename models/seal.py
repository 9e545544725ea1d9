"""Sealing personal data at rest with Fernet, keyed from RUJUKAN_SECRET_KEY."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlmodel import Session, select

from models.errors import SealError
from models.keys import channel_key, seal_key
from models.referral import Person

__all__ = ["Sealer", "channel_key", "ensure_secret_key"]  # channel_key now lives in models.keys

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from models.settings import Settings


class Sealer:
    """Seals and opens the person's record; a wrong key is an error, never plain text.

    It seals with `secret` and opens what `secret` or any of the `previous` secrets sealed, so
    records sealed before a key rotation stay readable (Fernet's MultiFernet).
    """

    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        if not secret:
            raise SealError(
                "RUJUKAN_SECRET_KEY is empty: set it, or unset it to use var/secret.key"
            )
        self._current = Fernet(seal_key(secret))
        self._fernet = MultiFernet([self._current, *(Fernet(seal_key(k)) for k in previous)])

    @classmethod
    def for_settings(cls, settings: Settings) -> Sealer:
        """The sealer of these settings: the current secret key and the earlier ones."""
        return cls(settings.resolved_secret_key(), settings.resolved_previous_secret_keys())

    def is_current(self, token: str) -> bool:
        """True if `token` was sealed with the current key (nothing to re-seal)."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, token: str) -> str:
        """The same sealed data, sealed again with the current key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SealError(
                "personal data cannot be re-sealed: none of the configured keys opens it "
                "(add the key it was sealed with to RUJUKAN_PREVIOUS_SECRET_KEYS; nothing was "
                "changed)"
            ) from None

    def seal(self, data: dict) -> str:
        """Encrypt a JSON-able dict."""
        return self._fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict:
        """Decrypt what `seal` produced, or raise SealError if the key is not the sealing key."""
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SealError(
                "personal data cannot be opened: RUJUKAN_SECRET_KEY is not the key it was sealed "
                "with, nor is any previous key (restore the original key, or name it in "
                "RUJUKAN_PREVIOUS_SECRET_KEYS; nothing was changed)"
            ) from None


def ensure_secret_key(settings: Settings, engine: Engine) -> Path | None:
    """Create RUJUKAN_HOME/secret.key for a case database that holds nothing sealed yet.

    Returns the new file, or None when a key is already configured. A lost key file beside a
    database with sealed records is an error: a fresh key could never open them.
    """
    key_file = settings.key_file
    if settings.secret_key is not None or (key_file.exists() and key_file.read_text().strip()):
        return None
    with Session(engine) as session:  # every sealed note or reason belongs to a sealed person
        sealed = session.exec(select(Person.referral_id).limit(1)).first() is not None
    if sealed:
        raise SealError(
            f"the case database holds sealed personal data but {settings.key_file} is missing: "
            "restore that file from your backup, or set RUJUKAN_SECRET_KEY to the key the data "
            "was sealed with (a new key could never open it; nothing was changed)"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)  # empty: a crash while it was being written
    try:  # created readable by the owner only, before the key is in it; never replaced
        handle = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None  # another process (init and serve at once) just wrote it
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(32))
        out.flush()
        os.fsync(out.fileno())
    return key_file
