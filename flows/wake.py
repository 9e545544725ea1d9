"""What follows a committed change: the messages go out at once, then Prefect catches up."""

from __future__ import annotations

import logging

from flows.server import prefect_at, reachable_api
from models.settings import Settings

log = logging.getLogger("rujukan.wake")

# A mass launch must not wait minutes for Prefect: beyond this many referrals, the next sweep's
# catch-up shows them (within RUJUKAN_SWEEP_INTERVAL_SECONDS, 200 a pass).
WAKE_LIMIT = 25


def after_commit(settings: Settings, referral_ids: list[int | None]) -> None:
    """Deliver the messages these changes queued, then bring the referrals' Prefect runs up to date.

    The change is committed already, so nothing here fails the caller: a message that did not go
    is retried by the relay's timer, and a wake-up is a signal, not data (if Prefect is down or
    slow, the deadline sweep's catch-up repairs the view). The one health check comes before
    Prefect is imported: with no server up, a command pays nothing for it.
    """
    # Apprise and Prefect take seconds to import: a command that changed nothing never pays.
    from notifications.relay import relay_now  # noqa: PLC0415

    ids = [i for i in referral_ids if i is not None]
    try:
        relay_now(settings, referral_ids=ids)
        if not ids or len(ids) > WAKE_LIMIT:
            return
        url = reachable_api(settings)
        if url is None:
            return
        from prefect.client.orchestration import get_client  # noqa: PLC0415

        from flows.referral import sync_referrals  # noqa: PLC0415

        with prefect_at(url, settings), get_client(sync_client=True) as client:
            sync_referrals(settings, ids, client)
    except Exception as exc:  # noqa: BLE001 - the commit stands; the relay and the sweep catch up
        log.warning(
            "after-commit delivery or wake-up failed (%s); the relay timer and the sweep catch up",
            type(exc).__name__,
        )
