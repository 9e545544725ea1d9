"""Keeping link tokens, and the public reporters' addresses, out of the access log.

A message's link is `/s/TOKEN`; a browser asks for that path once, and uvicorn's access log would
write it down. The app answers with a redirect to a token-free address, and this filter rewrites
the logged path to `/s/[redacted]`. `rujukan serve` should run uvicorn with `LOG_CONFIG` (or with
`access_log=False`); the app also installs the filter at startup, whatever the configuration.
For the public reporting paths (/lapor, /api/reports) the client's address is written as `-`.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PATH = re.compile(r"^(/s)/[^?\s]*")
_QUERY = re.compile(r"\?.*$")
# Paths of the public (reporters'): their client address is never written.
PUBLIC_PATHS = ("/lapor", "/api/reports")


def is_public(path: str) -> bool:
    """True for the public reporting pages and webhook, whose callers stay anonymous."""
    return any(
        path == p or path.startswith(p + "/") or path.startswith(p + "?") for p in PUBLIC_PATHS
    )


def redact_path(path: str) -> str:
    """The path as it may be logged: no link token, no query string."""
    return _QUERY.sub("", _TOKEN_PATH.sub(r"\1/[redacted]", path))


class RedactLinkTokens(logging.Filter):
    """Rewrite uvicorn access-log records so that no link token is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client_addr, method, full_path, http_version, status_code)
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            client = "-" if is_public(args[2]) else args[0]
            record.args = (client, args[1], redact_path(args[2]), *args[3:])
        elif isinstance(record.msg, str) and "/s/" in record.msg:
            record.msg = re.sub(r"/s/[A-Za-z0-9_.=-]+", "/s/[redacted]", record.msg)
        return True


def install_redaction() -> None:
    """Attach the filter to uvicorn's access logger and its handlers (idempotent)."""
    logger = logging.getLogger("uvicorn.access")
    targets = [logger, *logger.handlers]
    for target in targets:
        if not any(isinstance(f, RedactLinkTokens) for f in target.filters):
            target.addFilter(RedactLinkTokens())


# For uvicorn.run(..., log_config=LOG_CONFIG): uvicorn's own format, with the redacting filter.
LOG_CONFIG: dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_link_tokens": {"()": "web.access_log.RedactLinkTokens"}},
    "formatters": {
        "default": {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["redact_link_tokens"],
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {
            "handlers": ["access"],
            "level": "INFO",
            "propagate": False,
            "filters": ["redact_link_tokens"],
        },
    },
}
