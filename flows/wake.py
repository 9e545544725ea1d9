"""What follows a committed change: the messages go out at once, then Prefect catches up."""

from __future__ import annotations

from flows.server import reachable_api
from models.settings import Settings
from notifications.relay import relay_now


def after_commit(settings: Settings, referral_ids: list[int]) -> None:
    """Deliver the messages these changes queued, then wake the referrals' Prefect runs.

    A wake-up is a signal, not data: the change is already committed, and if Prefect is down
    the deadline sweep repairs the view later.
    """
    relay_now(settings, referral_ids=referral_ids)
    # Checked here, before importing Prefect: with no server up, a command pays nothing for it.
    if not referral_ids or reachable_api(settings) is None:
        return
    from flows.referral import wake_referrals

    wake_referrals(settings, referral_ids)
