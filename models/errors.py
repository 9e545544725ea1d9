"""The engine's errors: each says what is wrong and how to fix it, never personal data."""

import re

# Codes, slugs, step keys and reference codes: lowercase words with dashes, or RJK-XXXX-XX.
_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9-]{0,39}(#[0-9]{1,3})?|RJK-[A-Z0-9]{4}-[A-Z0-9]{2}")


def quoted(value: object) -> str:
    """A value the caller typed where an identifier belongs, quoted only if it looks like one.

    Anything else (a name typed into the wrong field, say) is not repeated: errors end up in
    terminals, logs and HTTP answers, and must never carry the person's data.
    """
    text = str(value)
    return f"'{text}'" if _IDENTIFIER.fullmatch(text) else "(not repeated here: not a code)"


class RujukanError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1


class BadInput(RujukanError):
    """The input is malformed, unknown or not allowed; nothing was written."""

    exit_code = 2


class NotFound(BadInput):
    """A referral, step or record does not exist (or is not visible to the caller)."""


class Forbidden(BadInput):
    """The caller may not act on this step or referral."""


class IllegalTransition(BadInput):
    """The step's status does not allow this action."""


class AlreadyDone(RujukanError):
    """The action was already carried out; nothing changed."""

    exit_code = 0


class SealError(RujukanError):
    """Personal data cannot be sealed or opened with the configured key."""
