"""Rotating the secret key: a new key for everything new, the earlier ones kept for reading.

The secret key seals personal data (Fernet) and signs links and sessions (itsdangerous). After
a rotation, the earlier keys (RUJUKAN_PREVIOUS_SECRET_KEYS and RUJUKAN_HOME/previous.keys) still
open what they sealed and still pass the links they signed, until those expire; re-sealing moves
every sealed value to the current key, after which the earlier keys are only needed for links.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from models.audit import record
from models.errors import BadInput
from models.note import StepNote
from models.referral import Consent, Person
from models.seal import Sealer
from models.settings import Settings, open_private
from models.vocabulary import AuditAction

# Every sealed column: (table, attribute).
SEALED_COLUMNS = ((Person, "sealed"), (Consent, "reason_sealed"), (StepNote, "sealed"))


def key_id(secret: str) -> str:
    """A short name of a key for the audit trail and the operator; it reveals nothing of it."""
    return hashlib.sha256(f"rujukan|key-id|{secret}".encode()).hexdigest()[:12]


def _replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` owner-only and in one step: a crash leaves the old file or the new."""
    partial = path.with_name(f".{path.name}.new")
    with open_private(partial, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def rotate_secret_key(session: Session, settings: Settings, *, actor: str, now: datetime) -> str:
    """Put a new random key in RUJUKAN_HOME/secret.key, the old one first in previous.keys.

    Audited in the caller's transaction, which should commit right after. Returns the new key's
    id. A key given by RUJUKAN_SECRET_KEY is the operator's to change: BadInput, with how.
    """
    if settings.secret_key is not None:
        raise BadInput(
            "the secret key comes from RUJUKAN_SECRET_KEY, which only you can change: set "
            "RUJUKAN_PREVIOUS_SECRET_KEYS to the current key (before any earlier ones), "
            "RUJUKAN_SECRET_KEY to a new one (`rujukan keys new` prints one), restart every "
            "process, then run `rujukan keys reseal`"
        )
    old = settings.resolved_secret_key()
    new = secrets.token_urlsafe(32)
    earlier = [old, *settings.resolved_previous_secret_keys()]
    # previous.keys first: at every moment one of the two files holds the old key.
    _replace_file(settings.previous_keys_file, "".join(f"{key}\n" for key in earlier))
    _replace_file(settings.key_file, new)
    record(
        session,
        actor=actor,
        action=AuditAction.key_rotated,
        now=now,
        detail={"key": key_id(new), "previous": key_id(old)},
    )
    return key_id(new)


def reseal(session: Session, sealer: Sealer, *, actor: str, now: datetime, key: str) -> int:
    """Seal every sealed value again with the current key; returns how many changed; audited.

    Values already sealed with the current key are left alone, so it is safe to repeat.
    """
    changed = 0
    for table, attribute in SEALED_COLUMNS:
        for row in session.exec(select(table)):
            token = getattr(row, attribute)
            if token is None or sealer.is_current(token):
                continue
            setattr(row, attribute, sealer.reseal(token))
            session.add(row)
            changed += 1
    record(
        session,
        actor=actor,
        action=AuditAction.data_resealed,
        now=now,
        detail={"key": key_id(key), "values": changed},
    )
    return changed
