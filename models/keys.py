"""Every key derived from RUJUKAN_SECRET_KEY, in one place: sealing, channel names, signing.

Each key is SHA-256 over a purpose tag and the secret. The secret is 32 random bytes (or an
operator's equally long choice), so no slow key-stretching is needed; the tag keeps one key from
ever standing in for another. Links and session cookies are signed by itsdangerous, each with its
own salt, so a token of one purpose never passes as the other.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from itsdangerous import URLSafeSerializer

LINK_SALT = "link"
SESSION_SALT = "session"
REPORT_PASS_SALT = "report-pass"


def _derive(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"rujukan|{purpose}|{secret}".encode()).digest()


def seal_key(secret: str) -> bytes:
    """The Fernet key that seals personal data at rest (unchanged since the first release)."""
    return base64.urlsafe_b64encode(_derive(secret, "seal"))


def channel_key(secret: str) -> bytes:
    """The HMAC key that names channels in the outbox without revealing their URLs."""
    return _derive(secret, "channels")


def receipt_salt(secret: str) -> bytes:
    """The salt of public-report receipts' scrypt hashes: a stolen table alone opens nothing."""
    return _derive(secret, "receipt")[:16]


def throttle_salt(secret: str) -> bytes:
    """The salt that names a client in rate-limit counters shared by several inbox processes."""
    return _derive(secret, "throttle")[:16]


def signing_keys(secret: str, previous: Sequence[str] = ()) -> list[bytes]:
    """The keys that sign links and sessions, newest last: itsdangerous signs with the last.

    Every key in the list is accepted when a token is checked: after a rotation the previous
    secrets (RUJUKAN_PREVIOUS_SECRET_KEYS, newest first) keep their links working until they
    expire, while every new token is signed with the current secret.
    """
    return [_derive(old, "signing") for old in reversed(previous)] + [_derive(secret, "signing")]


def _serializer(secret: str, salt: str, previous: Sequence[str]) -> URLSafeSerializer:
    # HMAC-SHA256 both to derive the per-salt key and to sign (itsdangerous defaults to SHA-1).
    return URLSafeSerializer(
        signing_keys(secret, previous),
        salt=salt,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )


def link_serializer(secret: str, previous: Sequence[str] = ()) -> URLSafeSerializer:
    """Signs links in messages with the key HMAC-SHA256(signing key, "link")."""
    return _serializer(secret, LINK_SALT, previous)


def session_serializer(secret: str, previous: Sequence[str] = ()) -> URLSafeSerializer:
    """Signs the web session cookie with the key HMAC-SHA256(signing key, "session")."""
    return _serializer(secret, SESSION_SALT, previous)


def report_pass_serializer(secret: str) -> URLSafeSerializer:
    """Signs the short-lived pass a reporter's receipt opens (a hidden form field, no cookie)."""
    return _serializer(secret, REPORT_PASS_SALT, ())
