"""The owner-only umask, in a module of its own: `rujukan` sets it before any command runs, even
`rujukan --help`, which must not pay for importing pydantic (models/settings.py re-exports both
names; the rest of the owner-only file handling lives there)."""

from __future__ import annotations

import os

PRIVATE_UMASK = 0o077


def restrict_umask() -> None:
    """Make every file this process creates from now on owner-only (0600, folders 0700).

    Child processes inherit the umask; a stricter umask the operator set is kept.
    """
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)
