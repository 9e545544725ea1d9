"""The relay: sends due outbox rows with Apprise, one recipient per call, with retries and a
dead state."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import apprise
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models.catalog import Catalog, load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.faults import crash_point
from models.outbox import OutboxMessage, OutboxStatus
from models.seal import channel_key
from models.settings import Settings
from notifications.channels import (
    CheckedApprise,
    HostPolicy,
    check_destination,
    guarded,
    quiet_apprise_logger,
    usable_apprise,
)
from notifications.render import Message, render_outbox_message

log = logging.getLogger("rujukan.relay")
quiet_apprise_logger()

# The lease (RUJUKAN_RELAY_LEASE_SECONDS, 5 min by default, never under 30 s) outlives any send:
# Apprise's own timeouts are seconds (4 s connect/read by default, 15 s for SMTP), so a row in
# `sending` past its lease means the relay stopped mid-send.
BATCH = 200
SENDERS = 8  # recipients served at once; rows of one recipient go out in order
_jitter = random.SystemRandom()


@dataclass
class RelayReport:
    """What one relay pass did (counts only)."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0  # claimed by another relay first
    errors: list[str] = field(default_factory=list)  # ids and reasons only, never bodies

    def as_dict(self) -> dict[str, int]:
        """The counts as a dict."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dead": self.dead,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Outcome:
    """The result of sending one row: delivered, or why not; and which channels have it."""

    delivered: bool
    error: str | None = None
    reached: frozenset[str] = frozenset()  # channel fingerprints (never URLs: they hold secrets)


def backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """Full-jitter backoff after `attempts` failed attempts: random(0, min(cap, base*2^(n-1)))."""
    ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
    return timedelta(seconds=_jitter.uniform(0, ceiling))


# --- claiming and marking -----------------------------------------------------------------------


def release_expired_leases(session: Session, *, now: datetime, max_attempts: int) -> int:
    """Rows left in `sending` past their lease go back to the queue (the send may have happened)."""
    stale = (OutboxMessage.status == OutboxStatus.sending) & (col(OutboxMessage.lease_until) < now)
    dead = session.exec(  # type: ignore[call-overload]
        update(OutboxMessage)
        .where(stale, col(OutboxMessage.attempts) >= max_attempts)
        .values(
            status=OutboxStatus.dead,
            lease_until=None,
            last_error="lease expired while sending; gave up after the last attempt",
        )
    ).rowcount
    back = session.exec(  # type: ignore[call-overload]
        update(OutboxMessage)
        .where(stale)
        .values(
            status=OutboxStatus.failed,
            lease_until=None,
            next_attempt_at=now,
            last_error="lease expired while sending (relay stopped); may be sent twice",
        )
    ).rowcount
    return dead + back


def due_ids(
    session: Session,
    *,
    now: datetime,
    referral_ids: list[int] | None,
    exclude: set[int],
    limit: int = BATCH,
) -> list[int]:
    """Ids of pending or failed rows whose time has come, oldest first."""
    query = (
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.failed]),
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit + len(exclude))
    )
    if referral_ids is not None:
        query = query.where(col(OutboxMessage.referral_id).in_(referral_ids))
    return [i for i in session.exec(query).all() if i not in exclude][:limit]


def claim(session: Session, *, message_id: int, now: datetime, lease: timedelta) -> bool:
    """Take one due row for sending (compare-and-set); False if another relay took it first."""
    result = session.exec(  # type: ignore[call-overload]
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.failed]),
            OutboxMessage.next_attempt_at <= now,
        )
        .values(
            status=OutboxStatus.sending,
            lease_until=now + lease,
            attempts=OutboxMessage.attempts + 1,
        )
    )
    return result.rowcount == 1


def mark(
    session: Session, *, message: OutboxMessage, outcome: Outcome, now: datetime, settings: Settings
) -> OutboxStatus | None:
    """Record the outcome of a claimed row; None if the claim was lost meanwhile (lease expired)."""
    # Channels that have the message stay remembered, whatever this attempt did.
    reached = sorted(set(message.delivered_to) | outcome.reached)
    if outcome.delivered:
        values: dict = dict(
            status=OutboxStatus.sent,
            sent_at=now,
            lease_until=None,
            last_error=None,
            delivered_to=reached,
        )
    elif message.attempts >= settings.relay_max_attempts:
        values = dict(
            status=OutboxStatus.dead,
            lease_until=None,
            delivered_to=reached,
            last_error=_clip(f"attempt {message.attempts}: {outcome.error}; gave up"),
        )
    else:
        delay = backoff(
            message.attempts,
            base=settings.relay_backoff_base_seconds,
            cap=settings.relay_backoff_cap_seconds,
        )
        values = dict(
            status=OutboxStatus.failed,
            lease_until=None,
            next_attempt_at=now + delay,
            last_error=_clip(f"attempt {message.attempts}: {outcome.error}"),
            delivered_to=reached,
        )
    # Fenced by the attempt number: a relay whose lease ran out cannot overwrite a newer claim.
    result = session.exec(  # type: ignore[call-overload]
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message.id,
            OutboxMessage.status == OutboxStatus.sending,
            OutboxMessage.attempts == message.attempts,
        )
        .values(**values)
    )
    return values["status"] if result.rowcount == 1 else None


def _clip(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."


# --- sending ------------------------------------------------------------------------------------


def fingerprint(service, key: bytes) -> str:
    """A short, stable name of one channel: keyed, so a copy of the database cannot be checked
    against guessed URLs (they may hold passwords and phone numbers)."""
    return hmac.new(key, service.url(privacy=False).encode(), hashlib.sha256).hexdigest()[:16]


def deliver(
    notifier: apprise.Apprise,
    *,
    recipient: str,
    message: Message,
    key: bytes,
    already: frozenset[str] = frozenset(),
) -> Outcome:
    """Send one message to every channel of one recipient tag, except those that already have it.

    Each channel is sent to on its own, so when one fails, a retry goes only to the failed ones.
    Right before each send the channel's host is resolved and checked again, and the send may
    connect only where that check allows. Never raises, never reports a body or a URL.
    """
    # A notifier not built by usable_apprise gets the strictest policy: only global addresses.
    policy = notifier.host_policy if isinstance(notifier, CheckedApprise) else HostPolicy()
    services = list(notifier.find(recipient, match_always=False))
    if not services:
        return Outcome(
            False,
            f"no channel for '{recipient}' (configuration error: run `rujukan channels check`)",
        )
    reached, failures = set(), []
    for service in services:
        try:
            name = fingerprint(service, key)
            if name in already:
                reached.add(name)
                continue
            # A name can change its answer since the config was checked: check it now.
            refused, permit = check_destination(service, policy, sending=True)
            if refused:
                failures.append(f"refused via {_scheme(service)}: {refused}")
                continue
            # Each channel gets the body written for its format: HTML mail, Markdown chat, text.
            body_format = str(service.resolve_format(None).value)
            one = apprise.Apprise(asset=notifier.asset)
            one.add(service)
            with guarded(permit):
                result = one.notify(
                    body=message.body(body_format),
                    title=message.subject,
                    body_format=body_format,
                    log_level=logging.WARNING,
                )
        except Exception as exc:  # a plugin bug must not stop the relay
            failures.append(f"{_scheme(service)}: {exc.__class__.__name__}")
            continue
        if result.status == apprise.AppriseResultStatus.SUCCESS:
            reached.add(name)
        elif permit.refused:
            failures.append(f"refused via {_scheme(service)}: connects to {permit.refused[0]}")
        else:
            failures.append(f"{result.status.name} via {_scheme(service)}{_redirect(result)}")
    return Outcome(not failures, "; ".join(failures) or None, frozenset(reached))


def _redirect(result: apprise.AppriseResult) -> str:
    """A note when the channel answered with a redirect, which the relay never follows."""
    for entry in result.logs():
        # Apprise's HTTP plugins log the status as `error=307` (never the body).
        found = re.search(r"error=(3\d\d)\b", str(getattr(entry, "message", "")))
        if found:
            return f" (answered HTTP {found.group(1)}, a redirect: redirects are never followed)"
    return ""


def _scheme(service) -> str:
    """The channel's scheme (mailto, json, tgram...): enough to find it, nothing secret."""
    try:
        url = service.url(privacy=True)
    except Exception:  # noqa: BLE001 - a plugin bug: the error still names the attempt
        return "channel"
    return url.split("://", 1)[0] if "://" in url else "channel"


@dataclass
class _Claimed:
    message: OutboxMessage
    rendered: Message | None
    error: str | None


def relay_now(
    settings: Settings, *, referral_ids: list[int] | None = None, now: datetime | None = None
) -> RelayReport:
    """Send every due pending or failed row (only these referrals' if given); never raises."""
    report = RelayReport()
    try:
        _relay(settings, referral_ids=referral_ids, now=now, report=report)
    except Exception as exc:  # the caller already committed its change; the timer retries
        log.warning("relay pass stopped: %s", exc.__class__.__name__)
        report.errors.append(f"relay pass stopped: {exc.__class__.__name__}")
    return report


def _relay(
    settings: Settings, *, referral_ids: list[int] | None, now: datetime | None, report: RelayReport
) -> None:
    if referral_ids is not None and not referral_ids:
        return
    engine = engine_for(settings.resolved_database_url)
    catalog = _catalog(settings)
    notifier: apprise.Apprise | None = None
    key = channel_key(settings.resolved_secret_key())
    seen: set[int] = set()
    with transaction(engine) as session:
        release_expired_leases(
            session, now=now or utcnow(), max_attempts=settings.relay_max_attempts
        )
    while True:
        moment = now or utcnow()
        batch = _claim_batch(
            engine,
            catalog,
            settings,
            referral_ids=referral_ids,
            now=moment,
            seen=seen,
            report=report,
        )
        if batch is None:
            return
        if not batch:
            continue
        if notifier is None:
            notifier = _notifier(settings)
        by_recipient: dict[str, list[_Claimed]] = defaultdict(list)
        for item in batch:
            by_recipient[item.message.recipient].append(item)
        with ThreadPoolExecutor(max_workers=min(SENDERS, len(by_recipient))) as pool:
            senders = [
                pool.submit(_send_all, notifier, key, items) for items in by_recipient.values()
            ]
            outcomes = [sender.result() for sender in senders]
        with transaction(engine) as session:
            for pairs in outcomes:
                for item, outcome in pairs:
                    _record(session, item, outcome, now or utcnow(), settings, report)


_cache_lock = threading.Lock()
_catalogs: dict[tuple, Catalog] = {}
_notifiers: dict[tuple, apprise.Apprise] = {}


def _stamp(*paths: Path) -> tuple:
    """Path and modification time of each file, so an edited file is read again."""
    stamps = []
    for path in paths:
        try:
            stamps.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            stamps.append((str(path), None))
    return tuple(stamps)


def _catalog(settings: Settings) -> Catalog:
    # relay_now runs after every commit: re-read the directory and pathways only when they change.
    key = _stamp(settings.agencies_file, *sorted(settings.pathways_dir.glob("*.y*ml")))
    with _cache_lock:
        if key not in _catalogs:
            _catalogs.clear()
            _catalogs[key] = load_catalog(settings)
        return _catalogs[key]


def _notifier(settings: Settings) -> apprise.Apprise:
    key = _stamp(settings.resolved_apprise_config) + (
        settings.allowed_webhook_hosts,
        settings.mailbox_port,
    )
    with _cache_lock:
        if key not in _notifiers:
            _notifiers.clear()
            _notifiers[key] = usable_apprise(settings)
        return _notifiers[key]


def _claim_batch(
    engine: Engine,
    catalog: Catalog,
    settings: Settings,
    *,
    referral_ids: list[int] | None,
    now: datetime,
    seen: set[int],
    report: RelayReport,
) -> list[_Claimed] | None:
    """Claim and render the next due rows; None when nothing is left."""
    with transaction(engine) as session:
        ids = due_ids(session, now=now, referral_ids=referral_ids, exclude=seen)
        if not ids:
            return None
        seen.update(ids)
        mine = []
        for message_id in ids:
            if claim(
                session,
                message_id=message_id,
                now=now,
                lease=timedelta(seconds=settings.relay_lease_seconds),
            ):
                mine.append(message_id)
            else:
                report.skipped += 1
    claimed = []
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(mine))).all()
        for row in sorted(rows, key=lambda r: r.id or 0):
            try:
                rendered = render_outbox_message(
                    session, message=row, catalog=catalog, settings=settings, now=now
                )
                claimed.append(_Claimed(row, rendered, None))
            except Exception as exc:  # a broken template or row fails this row only
                claimed.append(_Claimed(row, None, f"could not render ({exc.__class__.__name__})"))
        session.expunge_all()  # the rows travel on to the senders, detached and unchanged
    return claimed


def _send_all(
    notifier: apprise.Apprise, key: bytes, items: list[_Claimed]
) -> list[tuple[_Claimed, Outcome]]:
    results = []
    for item in items:
        if item.rendered is None:
            results.append((item, Outcome(False, item.error)))
        else:
            outcome = deliver(
                notifier,
                recipient=item.message.recipient,
                message=item.rendered,
                key=key,
                already=frozenset(item.message.delivered_to),
            )
            if outcome.delivered:
                crash_point("after-send")  # the harness's window: sent, not yet marked
            results.append((item, outcome))
    return results


def _record(
    session: Session,
    item: _Claimed,
    outcome: Outcome,
    now: datetime,
    settings: Settings,
    report: RelayReport,
) -> None:
    status = mark(session, message=item.message, outcome=outcome, now=now, settings=settings)
    if status == OutboxStatus.sent:
        report.sent += 1
        return
    if status is None:
        report.skipped += 1
        return
    if status == OutboxStatus.dead:
        report.dead += 1
        log.warning(
            "outbox message %s is dead after %s attempts", item.message.id, item.message.attempts
        )
    else:
        report.failed += 1
    report.errors.append(f"message {item.message.id}: {outcome.error}")


def run_relay(settings: Settings, stop: threading.Event) -> None:
    """Relay every relay_interval_seconds until `stop` is set (for `rujukan serve`)."""
    while not stop.is_set():
        relay_now(settings)
        stop.wait(settings.relay_interval_seconds)
