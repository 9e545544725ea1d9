"""Sealing personal data at rest with Fernet, keyed from RUJUKAN_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from models.errors import SealError


def _derive(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"rujukan|{purpose}|{secret}".encode()).digest()


class Sealer:
    """Seals and opens the person's record; a wrong key is an error, never plain text."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SealError("RUJUKAN_SECRET_KEY is empty: set it, or unset it to use var/secret.key")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, "seal")))

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
                "with (restore the original key; nothing was changed)"
            ) from None


def signing_key(secret: str) -> bytes:
    """The HMAC key for signed links, distinct from the sealing key."""
    return _derive(secret, "links")
