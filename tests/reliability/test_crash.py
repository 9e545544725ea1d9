"""Crash safety, the seeded short form of bench/chaos.py: `rujukan serve` killed at each crash
point and at random moments while agencies act through the web API; nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import POINTS, run_chaos

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_kills_at_every_crash_point_and_at_random_lose_and_double_nothing(tmp_path: Path):
    figures = run_chaos(transitions=24, random_kills=2, seed=20260, home=tmp_path / "var")
    print("\n" + "\n".join(figures.lines()))
    assert figures.problems == []
    assert figures.unreached == []
    assert all(figures.kills[point] == 1 for point in POINTS)
    assert figures.kills["random"] == 2
    assert figures.transitions >= 24
    assert figures.messages > 0 and figures.received >= figures.messages
