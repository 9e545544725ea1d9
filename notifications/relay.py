"""The relay: sends due outbox rows with Apprise, one recipient per call, with retries and a
dead state."""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import apprise
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models.catalog import Catalog, load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.faults import crash_point
from models.outbox import OutboxMessage, OutboxStatus
from models.referral import Referral
from models.seal import channel_key
from models.settings import Settings
from models.step import Step
from notifications.channels import (
    CheckedApprise,
    HostPolicy,
    check_destination,
    guarded,
    quiet_apprise_logger,
    usable_apprise,
)
from notifications.render import Message, render_digest, render_outbox_message

log = logging.getLogger("rujukan.relay")
quiet_apprise_logger()

# The lease (RUJUKAN_RELAY_LEASE_SECONDS, 5 min by default, never under 30 s) outlives any send:
# Apprise's own timeouts are seconds (4 s connect/read by default, 15 s for SMTP), so a row in
# `sending` past its lease means the relay stopped mid-send.
BATCH = 5000  # rows claimed in one tick (they go out as one digest per recipient)
SENDERS = 8  # recipients served at once; rows of one recipient go out in order
# The marker records finished sends together: up to MARK_BATCH of them in one transaction, after
# waiting up to MARK_LINGER seconds for more to finish (one commit for many, one writer at a
# time, instead of a transaction per send from eight threads contending for the write lock).
MARK_BATCH = 500
MARK_LINGER = 0.05
_jitter = random.SystemRandom()


@dataclass
class RelayReport:
    """What one relay pass did (counts only)."""

    sent: int = 0  # outbox rows delivered
    failed: int = 0
    dead: int = 0
    skipped: int = 0  # claimed by another relay first
    sends: int = 0  # messages handed to the channels: a digest is one send for many rows
    waiting: int = 0  # rows still due when a time-boxed pass stopped, left to the relay timer
    errors: list[str] = field(default_factory=list)  # ids and reasons only, never bodies
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def as_dict(self) -> dict[str, int]:
        """The counts as a dict."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dead": self.dead,
            "skipped": self.skipped,
            "sends": self.sends,
            "waiting": self.waiting,
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


def due_rows(
    session: Session,
    *,
    now: datetime,
    referral_ids: list[int] | None,
    limit: int = BATCH,
) -> list[tuple[int, str, datetime]]:
    """(id, recipient, due time) of pending or failed rows whose time has come, oldest first."""
    query = (
        select(OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.next_attempt_at)
        .where(
            col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.failed]),
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if referral_ids is not None:
        query = query.where(col(OutboxMessage.referral_id).in_(referral_ids))
    return [(i, r, at) for i, r, at in session.exec(query).all()]


def claim(session: Session, *, ids: list[int], now: datetime, lease: timedelta) -> list[int]:
    """Take due rows for sending in one compare-and-set; the ids this relay got (another relay
    may have taken some first)."""
    if not ids:
        return []
    result = session.exec(  # type: ignore[call-overload]
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(ids),
            col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.failed]),
            OutboxMessage.next_attempt_at <= now,
        )
        .values(
            status=OutboxStatus.sending,
            lease_until=now + lease,
            attempts=OutboxMessage.attempts + 1,
        )
        .returning(OutboxMessage.id)
    )
    return sorted(result.scalars().all())


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
    # A Core UPDATE of the table: the ORM's session synchronisation costs more than the write.
    table = OutboxMessage.__table__
    result = session.connection().execute(
        update(table)  # type: ignore[arg-type]
        .where(
            table.c.id == message.id,
            table.c.status == OutboxStatus.sending,
            table.c.attempts == message.attempts,
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
    services = channels_of(notifier, recipient)
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
            one = _alone(notifier, service)
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


def _alone(notifier: apprise.Apprise, service) -> apprise.Apprise:
    """An Apprise object holding only this channel, to send through it and read its result."""
    if isinstance(notifier, CheckedApprise):
        return notifier.alone(service)
    one = apprise.Apprise(asset=notifier.asset)
    one.add(service)
    return one


def channels_of(notifier: apprise.Apprise, recipient: str) -> list:
    """The channels of one recipient tag: from the checked notifier's tag index, or Apprise's
    own search for any other notifier."""
    if isinstance(notifier, CheckedApprise):
        return notifier.channels_for(recipient)
    return list(notifier.find(recipient, match_always=False))


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
class Delivery:
    """One send to one recipient: a single message, or a digest of several rows."""

    recipient: str
    rows: list[OutboxMessage]
    rendered: Message | None
    error: str | None = None

    @property
    def already(self) -> frozenset[str]:
        """Channels that have every row of it already (a retry after a partial failure)."""
        return frozenset(set.intersection(*(set(r.delivered_to) for r in self.rows)))


@dataclass
class Finished:
    """A delivery whose send is over, waiting for the marker to record its rows."""

    delivery: Delivery
    outcome: Outcome
    now: datetime | None
    report: RelayReport


class Relay:
    """Sends due outbox rows, one recipient at a time each and many recipients at once.

    A recipient with several due rows gets one digest; a recipient whose send is still under
    way, or whose channels' pace (Apprise's `request_rate_per_sec`: 5.5 s for email, 0.2 s for
    WhatsApp) has not yet come round since its last send, is left for a later tick, and its rows
    join that tick's digest. So a slow or failing channel holds up only its own recipient.

    Three kinds of work overlap: a tick claims the due rows in one UPDATE and reads what their
    messages need in one query per table, and hands each delivery to the senders as soon as it
    is rendered; eight sender threads send; one marker thread records finished sends, many to a
    transaction. A recipient stays busy until its rows are recorded.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.resolved_database_url)
        self.key = channel_key(settings.resolved_secret_key())
        self.pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="relay")
        self.busy: set[str] = set()  # recipients with a send under way or not yet recorded
        self.next_send: dict[str, float] = {}  # recipient -> monotonic time its pace allows
        self.active = 0  # deliveries handed to the senders and not yet recorded
        self.lock = threading.Lock()
        self.settled = threading.Condition(self.lock)  # notified as deliveries are recorded
        self.finished: queue.SimpleQueue[Finished | None] = queue.SimpleQueue()
        self.marker = threading.Thread(target=self._mark_loop, name="relay-marker", daemon=True)
        self.marker.start()

    def release_leases(self, now: datetime) -> None:
        """Rows a stopped relay left in `sending` go back to the queue."""
        with transaction(self.engine) as session:
            release_expired_leases(session, now=now, max_attempts=self.settings.relay_max_attempts)

    def tick(
        self,
        report: RelayReport,
        *,
        referral_ids: list[int] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Claim what is due for every free recipient and start sending; the sends started.

        Rows a stopped relay left in `sending` past their lease go back to the queue first.
        """
        moment = now or utcnow()
        self.release_leases(moment)
        catalog = _catalog(self.settings)
        with self.lock:
            blocked = self.busy | {r for r, at in self.next_send.items() if at > time.monotonic()}
        notifier: apprise.Apprise | None = None
        started = 0
        for delivery in self._claim(catalog, referral_ids, moment, blocked, report):
            if notifier is None:  # not `notifier or`: an Apprise object's truth counts channels
                notifier = _notifier(self.settings)
            with self.lock:
                self.busy.add(delivery.recipient)
                self.active += 1
            self.pool.submit(self._send, notifier, delivery, now, report)
            started += 1
        return started

    def wait(self) -> None:
        """Wait until the sends under way are over and recorded."""
        with self.settled:
            self.settled.wait_for(lambda: self.active == 0)

    def close(self) -> None:
        """Let the sends under way finish and be recorded, then stop the senders and the marker."""
        self.pool.shutdown(wait=True)
        self.finished.put(None)
        self.marker.join()

    def _claim(
        self,
        catalog: Catalog,
        referral_ids: list[int] | None,
        now: datetime,
        blocked: set[str],
        report: RelayReport,
    ) -> Iterator[Delivery]:
        """Claim the due rows of free recipients (and those due within the digest window) and
        render one delivery per recipient, each given out as soon as it is rendered."""
        horizon = now + timedelta(seconds=self.settings.digest_window_seconds)
        with transaction(self.engine) as session:
            wanted: dict[str, list[int]] = defaultdict(list)
            served = set()  # a recipient is served when one of its rows is due now; its rows due
            # within the window ride along in the digest instead of going out alone a moment later
            for message_id, recipient, due_at in due_rows(
                session, now=horizon, referral_ids=referral_ids
            ):
                if recipient not in blocked:
                    wanted[recipient].append(message_id)
                    if due_at <= now:
                        served.add(recipient)
            ids = sorted(i for r in served for i in wanted[r])
            mine = claim(
                session,
                ids=ids,
                now=horizon,
                lease=timedelta(seconds=self.settings.relay_lease_seconds),
            )
            report_skipped = len(ids) - len(mine)
        with report.lock:
            report.skipped += report_skipped
        if not mine:
            return
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(mine))).all()
            by_recipient: dict[str, list[OutboxMessage]] = defaultdict(list)
            for row in sorted(rows, key=lambda r: r.id or 0):
                by_recipient[row.recipient].append(row)
            loaded = preload(session, rows)  # kept until every delivery is rendered
            for recipient, group in by_recipient.items():
                delivery = self._render(session, catalog, recipient, group, now)
                for row in group:  # the rows travel on to a sender, detached and unchanged
                    session.expunge(row)
                yield delivery
            del loaded

    def _render(
        self,
        session: Session,
        catalog: Catalog,
        recipient: str,
        rows: list[OutboxMessage],
        now: datetime,
    ) -> Delivery:
        try:
            if len(rows) == 1:
                rendered = render_outbox_message(
                    session, message=rows[0], catalog=catalog, settings=self.settings, now=now
                )
            else:
                rendered = render_digest(
                    session, messages=rows, catalog=catalog, settings=self.settings, now=now
                )
        except Exception as exc:  # a broken template or row fails this delivery only
            return Delivery(recipient, rows, None, f"could not render ({exc.__class__.__name__})")
        return Delivery(recipient, rows, rendered)

    def _send(
        self,
        notifier: apprise.Apprise,
        delivery: Delivery,
        now: datetime | None,
        report: RelayReport,
    ) -> None:
        """Send one delivery and hand its outcome to the marker."""
        try:
            if delivery.rendered is None:
                outcome = Outcome(False, delivery.error)
            else:
                outcome = deliver(
                    notifier,
                    recipient=delivery.recipient,
                    message=delivery.rendered,
                    key=self.key,
                    already=delivery.already,
                )
                with report.lock:
                    report.sends += 1
                if outcome.delivered:
                    crash_point("after-send")  # the harness's window: sent, not yet marked
        except Exception as exc:  # noqa: BLE001 - the lease returns the rows to the queue
            log.warning("relay send stopped: %s", exc.__class__.__name__)
            with report.lock:
                report.errors.append(f"relay send stopped: {exc.__class__.__name__}")
            self._settle([delivery])
            return
        finally:
            pace = _pace(notifier, delivery.recipient)
            with self.lock:
                self.next_send[delivery.recipient] = time.monotonic() + pace
        self.finished.put(Finished(delivery, outcome, now, report))

    def _mark_loop(self) -> None:
        """The marker: record finished sends, as many as have finished, in one transaction."""
        while True:
            first = self.finished.get()
            if first is None:
                return
            batch, stop = [first], False
            linger = time.monotonic() + MARK_LINGER
            while len(batch) < MARK_BATCH:
                try:
                    more = self.finished.get(timeout=max(0.0, linger - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._mark(batch)
            if stop:
                return

    def _mark(self, batch: list[Finished]) -> None:
        """Record each row of these finished sends: its own delivery, attempt and error."""
        try:
            with transaction(self.engine) as session:
                moment = utcnow()
                statuses = [
                    [
                        mark(
                            session,
                            message=row,
                            outcome=done.outcome,
                            now=done.now or moment,
                            settings=self.settings,
                        )
                        for row in done.delivery.rows
                    ]
                    for done in batch
                ]
            for done, marked in zip(batch, statuses, strict=True):
                for row, status in zip(done.delivery.rows, marked, strict=True):
                    _count(done.report, row, done.outcome, status)
        except Exception as exc:  # noqa: BLE001 - unrecorded: the leases return the rows
            log.warning("relay could not record sends: %s", exc.__class__.__name__)
            for done in batch:
                with done.report.lock:
                    done.report.errors.append(
                        f"relay could not record a send: {exc.__class__.__name__}"
                    )
        finally:
            self._settle([done.delivery for done in batch])

    def _settle(self, deliveries: list[Delivery]) -> None:
        """These deliveries are over: their recipients are free again."""
        with self.settled:
            for delivery in deliveries:
                self.busy.discard(delivery.recipient)
                self.active -= 1
            self.settled.notify_all()


def _pace(notifier: apprise.Apprise, recipient: str) -> float:
    """The longest pause Apprise keeps between two sends through one of the recipient's
    channels (`request_rate_per_sec`, in seconds)."""
    try:
        services = channels_of(notifier, recipient)
    except Exception:  # noqa: BLE001 - no pace known: no pause
        return 0.0
    return max((float(getattr(s, "request_rate_per_sec", 0) or 0) for s in services), default=0.0)


def preload(session: Session, rows: list[OutboxMessage]) -> list[Referral | Step]:
    """Load the referrals and steps of these rows in two queries: rendering then finds them in
    the session instead of asking for each.

    The caller keeps the list while it renders: the session's identity map holds its objects
    only weakly, so objects nobody refers to are gone again, and `session.get` would read each
    one from the database after all.
    """
    referral_ids = {r.referral_id for r in rows}
    step_ids = {r.step_id for r in rows if r.step_id is not None}
    loaded: list[Referral | Step] = list(
        session.exec(select(Referral).where(col(Referral.id).in_(referral_ids))).all()
    )
    if step_ids:
        loaded += session.exec(select(Step).where(col(Step.id).in_(step_ids))).all()
    return loaded


def relay_now(
    settings: Settings,
    *,
    referral_ids: list[int] | None = None,
    now: datetime | None = None,
    budget: float | None = None,
) -> RelayReport:
    """Send every due pending or failed row (only these referrals' if given); never raises.

    With a `budget` (seconds), no new send starts after it; sends already started finish, and
    `waiting` counts the rows left for the relay timer.
    """
    report = RelayReport()
    if referral_ids is not None and not referral_ids:
        return report
    relay: Relay | None = None
    try:
        relay = Relay(settings)
        deadline = None if budget is None else time.monotonic() + budget
        while deadline is None or time.monotonic() < deadline:
            if relay.tick(report, referral_ids=referral_ids, now=now):
                relay.wait()  # sends already started always finish
                continue
            pause = _pace_pause(relay, referral_ids, now)
            if pause is None or (deadline is not None and time.monotonic() + pause >= deadline):
                break
            time.sleep(pause)
        relay.close()
        if budget is not None:
            report.waiting = _due_count(relay.engine, referral_ids, now or utcnow())
    except Exception as exc:  # the caller already committed its change; the timer retries
        log.warning("relay pass stopped: %s", exc.__class__.__name__)
        report.errors.append(f"relay pass stopped: {exc.__class__.__name__}")
        if relay is not None:
            relay.close()
    return report


def _pace_pause(relay: Relay, referral_ids: list[int] | None, now: datetime | None) -> float | None:
    """Seconds until a recipient whose rows wait only for its channels' pace may send again;
    None when no due row waits for that."""
    with relay.lock:
        paced = {r: at for r, at in relay.next_send.items() if at > time.monotonic()}
    if not paced:
        return None
    with Session(relay.engine) as session:
        due = due_rows(session, now=now or utcnow(), referral_ids=referral_ids)
    waits = [paced[r] - time.monotonic() for _, r, _ in due if r in paced]
    return max(0.0, min(waits)) if waits else None


def _due_count(engine: Engine, referral_ids: list[int] | None, now: datetime) -> int:
    with Session(engine) as session:
        query = select(func.count()).where(
            col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.failed]),
            OutboxMessage.next_attempt_at <= now,
        )
        if referral_ids is not None:
            query = query.where(col(OutboxMessage.referral_id).in_(referral_ids))
        return int(session.exec(query).one())


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


def _count(
    report: RelayReport, message: OutboxMessage, outcome: Outcome, status: OutboxStatus | None
) -> None:
    """Count one recorded row in the report (ids and reasons only)."""
    with report.lock:
        if status == OutboxStatus.sent:
            report.sent += 1
            return
        if status is None:
            report.skipped += 1
            return
        if status == OutboxStatus.dead:
            report.dead += 1
            log.warning("outbox message %s is dead after %s attempts", message.id, message.attempts)
        else:
            report.failed += 1
        report.errors.append(f"message {message.id}: {outcome.error}")


def run_relay(settings: Settings, stop: threading.Event) -> None:
    """Relay until `stop` is set (for `rujukan serve`): a tick every relay_interval_seconds, or
    sooner while recipients wait only for their channels' pace; sends run beside the ticks."""
    relay = Relay(settings)
    try:
        while not stop.is_set():
            report = RelayReport()
            try:
                relay.tick(report)
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("relay tick stopped: %s", exc.__class__.__name__)
            stop.wait(
                min(settings.relay_interval_seconds, 1.0)
                if relay.active
                else settings.relay_interval_seconds
            )
    finally:
        relay.close()
