"""What a caller may send before anyone reads it, and how many refusals it may cause.

`Door` (a pure ASGI middleware, outermost) answers before the app reads anything: 429 for a client
(or, in a flood, everybody) over its budget of refused credentials, unless it carries a valid
signed session or link (checked without the database); 413 for a body over its route's limit, by
Content-Length and by counting the streamed bytes; 401 for an API write with no bearer token.

`Throttle` counts refused credentials per client and overall with the `limits` library (in
memory, or Redis when several inbox processes share the load) and keeps the audit trail
bounded: of one attempt from one client in a window, the first five are written one by one and
the rest as one entry with their count. A client is known only by a salted hash of its
address: the salt is each process's own, or derived from the secret key when the counters
live in Redis, so that every inbox process names a client alike.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from models.keys import throttle_salt
from models.settings import Settings

KIB = 1024
DEFAULT_BODY_LIMIT = 16 * KIB  # an action's form or JSON: codes, a date, a note of 2,000 characters
BODY_LIMITS = {  # (method, path) -> bytes
    ("POST", "/api/referrals"): 64 * KIB,  # one intake
    ("POST", "/coordinator/intake"): 64 * KIB,
}
# Authenticated by their own HMAC signature, not a bearer token (web/lapor.py).
SIGNED_API = {("POST", "/api/reports")}
WINDOW = timedelta(minutes=1)
AUDITED_ONE_BY_ONE = 5  # refusals of one attempt from one client a window; the rest are counted
SALT_LIFETIME = 3600.0  # seconds: a client's hash changes every hour, so it follows nobody for long

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def body_limit(method: str, path: str) -> int:
    """The largest body a route accepts."""
    return BODY_LIMITS.get((method, path.rstrip("/") or "/"), DEFAULT_BODY_LIMIT)


@dataclass
class Tally:
    """Refusals of one attempt from one client in one window."""

    started: datetime
    attempt: str
    error: str
    via: str
    count: int = 1

    @property
    def repeats(self) -> int:
        """The refusals past those audited one by one: one entry holds their count."""
        return max(self.count - AUDITED_ONE_BY_ONE, 0)


@dataclass
class Throttle:
    """Budgets of refused credentials per client and overall, and the refusals' audit tally."""

    settings: Settings
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    salt_born: float = field(default_factory=time.monotonic)
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.settings.rate_limit_storage.startswith("memory://"):
            # Counters shared by several inbox processes: one client needs one name in all of
            # them, so the salt comes from the secret key instead of each process's own dice.
            self.salt = throttle_salt(self.settings.resolved_secret_key())
        self.limiter = MovingWindowRateLimiter(
            storage_from_string(self.settings.rate_limit_storage)
        )
        self.per_client = parse(self.settings.refusals_per_client)
        self.overall = parse(self.settings.refusals_overall)
        self.receipts_per_client = parse(self.settings.receipt_checks_per_client)
        self.receipts_overall = parse(self.settings.receipt_checks_overall)

    def source(self, host: str | None) -> str:
        """The client as the counters know it: a keyed hash of its address, never the address.

        The key is random, held in memory only, and replaced every hour: a hash links a client's
        requests for an hour at most, and nothing outside this process can compute it.
        """
        with self.lock:
            if time.monotonic() - self.salt_born >= SALT_LIFETIME:
                self.salt, self.salt_born = secrets.token_bytes(16), time.monotonic()
            salt = self.salt
        return hashlib.blake2b((host or "-").encode(), key=salt, digest_size=8).hexdigest()

    def check_receipt(self, source: str) -> bool:
        """Spend one receipt check of the client's and the overall budget; False if none is left."""
        return self.limiter.hit(self.receipts_per_client, "receipt", source) and self.limiter.hit(
            self.receipts_overall, "receipt", "all"
        )

    def over_budget(self, source: str) -> bool:
        """True if this client, or all clients together, used up their refusals for now."""
        return not (
            self.limiter.test(self.per_client, "refused", source)
            and self.limiter.test(self.overall, "refused", "all")
        )

    def count_refusal(self, source: str) -> None:
        """Spend one refusal of the client's and the overall budget."""
        self.limiter.hit(self.per_client, "refused", source)
        self.limiter.hit(self.overall, "refused", "all")

    def tally(
        self, source: str, attempt: str, error: str, via: str, now: datetime
    ) -> tuple[bool, list[Tally]]:
        """Whether to audit this refusal now, and the closed windows whose repeats to audit."""
        with self.lock:
            closed = [self.tallies.pop(k) for k, t in list(self.tallies.items())
                      if now - t.started >= WINDOW]  # fmt: skip
            current = self.tallies.setdefault((source, attempt), Tally(now, attempt, error, via, 0))
            current.count += 1
            return current.count <= AUDITED_ONE_BY_ONE, [t for t in closed if t.repeats]

    def drain(self) -> list[Tally]:
        """Every open window with repeats (at shutdown, so that no count is lost)."""
        with self.lock:
            left = [t for t in self.tallies.values() if t.repeats]
            self.tallies.clear()
            return left


class Door:
    """The outermost middleware: throttled clients, oversized bodies, API writes without a token."""

    def __init__(
        self,
        app,
        throttle: Throttle,
        has_valid_credential: Callable[[str, dict[bytes, bytes]], bool],
    ) -> None:
        self.app = app
        self.throttle = throttle
        self.has_valid_credential = has_valid_credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        path, method = scope["path"], scope["method"]
        is_api = path.startswith("/api/")
        client = scope.get("client")
        source = self.throttle.source(client[0] if client else None)
        scope.setdefault("state", {})["source"] = source
        if self.throttle.over_budget(source) and not self.has_valid_credential(path, headers):
            await _answer(
                send,
                429,
                "TooManyRefusals",
                "too many refused attempts: wait a minute and try again with a valid link or token",
                is_api,
                retry_after=60,
            )
            return  # fmt: skip
        if method in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = body_limit(method, path)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(send, limit, is_api)
            return
        if (
            is_api
            and (method, path.rstrip("/")) not in SIGNED_API
            and not headers.get(b"authorization", b"").lower().startswith(b"bearer ")
        ):
            await _answer(
                send,
                401,
                "Unauthorized",
                "send 'Authorization: Bearer TOKEN' with an access token or a link token",
                is_api,
            )
            return  # fmt: skip
        received, too_large = 0, False

        async def counted() -> dict:
            # Past the limit the stream ends here: the app reads no more, and whatever it
            # answers to the cut body is replaced by the 413 below.
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def answered(message: dict) -> None:
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await _too_large(send, limit, is_api)

        await self.app(scope, counted, answered)


async def _too_large(send: Send, limit: int, is_api: bool) -> None:
    message = f"the request body is larger than this address accepts ({limit // KIB} KiB)"
    await _answer(send, 413, "TooLarge", message, is_api)


async def _answer(
    send: Send, status: int, error: str, message: str, is_api: bool, retry_after: int = 0
) -> None:
    if is_api:
        body = json.dumps({"error": error, "message": message}).encode()
        kind = b"application/json"
    else:
        body = message.encode()
        kind = b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    headers.append((b"cache-control", b"no-store"))
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
