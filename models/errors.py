"""The engine's errors: each says what is wrong and how to fix it, never personal data."""


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
