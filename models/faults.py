"""Crash points for the crash-safety harness (bench/chaos.py): die here, the n-th time, on purpose.

RUJUKAN_CRASH_AT="<point>:<n>" makes the process that first reads it kill itself with SIGKILL
(no cleanup, no flush: a power cut as far as the database and the relay can tell) the n-th time
it reaches the named point. Points: `before-commit` and `after-commit` (models.database.transaction)
and `after-send` (notifications.relay, after Apprise accepted a message, before the row is marked
sent). Unset in normal operation, where a crash point costs one comparison.
"""

from __future__ import annotations

import os
import signal
from functools import lru_cache

from models.settings import get_settings

POINTS = ("before-commit", "after-commit", "after-send")

_reached: dict[str, int] = {}


@lru_cache(maxsize=1)
def crash_plan() -> tuple[str, int] | None:
    """The (point, n) this process dies at, read once from RUJUKAN_CRASH_AT; None when unset."""
    value = get_settings().crash_at
    # The plan belongs to this process: the Prefect runner and flow runs that `rujukan serve`
    # starts afterwards inherit its environment, and must not die on their own count.
    os.environ.pop("RUJUKAN_CRASH_AT", None)
    if not value:
        return None
    point, _, count = value.partition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"RUJUKAN_CRASH_AT must be '<point>:<n>' with a point of {', '.join(POINTS)} and n >= 1"
        )
    return point, int(count)


def crash_point(name: str) -> None:
    """SIGKILL this process if RUJUKAN_CRASH_AT names this point and this is its n-th time."""
    plan = crash_plan()
    if plan is None or plan[0] != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == plan[1]:
        os.kill(os.getpid(), signal.SIGKILL)
