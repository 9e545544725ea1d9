"""What follows a committed change: the messages go out at once, then Prefect catches up."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from flows.server import prefect_at, reachable_api, serving
from models.clock import utcnow
from models.database import engine_for
from models.outbox import OutboxMessage, OutboxStatus
from models.settings import Settings

if TYPE_CHECKING:
    from notifications.relay import RelayReport

log = logging.getLogger("rujukan.wake")

# A mass launch must not wait on Prefect: beyond this many referrals, the catch-up shows them
# (serve's sweeper within seconds; where no serve runs here, the next sweep, 200 a pass).
WAKE_LIMIT = 25


def after_commit(settings: Settings, referral_ids: list[int | None]) -> RelayReport | None:
    """Send the messages these changes queued, then bring the referrals' Prefect runs up to date
    (unless serve's sweeper does, see `following`).

    Sending gets `RUJUKAN_SEND_BUDGET_SECONDS`: no send starts after it (those started finish),
    and what is left waits for the relay that `rujukan serve` runs. The change is committed
    already, so nothing here fails the caller: a message that did not go is retried by the
    relay's timer, and a wake-up is a signal, not data (if Prefect is down or slow, the deadline
    sweep's catch-up repairs the view). The one health check comes before Prefect is imported:
    with no server up, a command pays nothing for it. Returns what the sending did (None if it
    could not start, or if these referrals had nothing to send).
    """
    ids = [i for i in referral_ids if i is not None]
    report = None
    try:
        if ids and _queued(settings, ids):
            # Apprise takes a good part of a second to import and load its plugins: a change
            # that queued no message (an acceptance) never pays for it.
            from notifications.relay import relay_now  # noqa: PLC0415

            report = relay_now(settings, referral_ids=ids, budget=settings.send_budget_seconds)
        if not ids or len(ids) > WAKE_LIMIT or following(settings):
            return report
        url = reachable_api(settings)
        if url is None:
            return report
        from prefect.client.orchestration import get_client  # noqa: PLC0415

        from flows.referral import sync_referrals  # noqa: PLC0415

        with prefect_at(url, settings), get_client(sync_client=True) as client:
            sync_referrals(settings, ids, client)
    except Exception as exc:  # noqa: BLE001 - the commit stands; the relay and the sweep catch up
        log.warning(
            "after-commit delivery or wake-up failed (%s); the relay timer and the sweep catch up",
            type(exc).__name__,
        )
    return report


def following(settings: Settings) -> bool:
    """True if a `rujukan serve` of this home runs its sweeper, which brings Prefect up to date
    within seconds of a change (flows.sweep.run_sweeper): then no other process writes a view."""
    data = serving(settings)
    return bool(data and data.get("sweeper"))


def _queued(settings: Settings, referral_ids: list[int]) -> bool:
    """True if these referrals have a message `relay_now` would send now: pending or failed and
    due, or left in `sending` past its lease (the relay puts it back first). One query, no
    Apprise."""
    now = utcnow()
    waiting = col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.failed]) & (
        OutboxMessage.next_attempt_at <= now
    )
    stale = (OutboxMessage.status == OutboxStatus.sending) & (col(OutboxMessage.lease_until) < now)
    query = select(OutboxMessage.id).where(
        col(OutboxMessage.referral_id).in_(referral_ids), waiting | stale
    )
    with Session(engine_for(settings.resolved_database_url)) as session:
        return session.exec(query.limit(1)).first() is not None


def relay_running(settings: Settings) -> bool:
    """True if a `rujukan serve` of this home runs (its relay sends what a command left)."""
    return serving(settings) is not None
