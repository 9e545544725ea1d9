"""Row 8: `rujukan serve` idle with 10,000 open referrals: resident memory of all its processes,
CPU-seconds per minute over about two minutes, and whether any process outlives serve after a
SIGTERM. The referrals are written with bulk inserts and carry no audit entries, so serve has
nothing to catch up: what it spends is what it spends with nothing to do."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import (
    Figure,
    Sampler,
    Serve,
    cli,
    home_env,
    not_measured,
    processes_of,
    snapshot,
)
from bench.history import History, open_count
from models.database import make_engine
from models.settings import Settings

REFERRALS = 10_000
WINDOW = 120  # seconds measured
SETTLE = 15  # seconds after ready before measuring


def per_process(home: Path) -> dict[int, tuple[str, int, float]]:
    """Each process of the home: a short name, its RSS (bytes) and CPU seconds so far."""
    import psutil

    found = {}
    for pid in processes_of(home):
        try:
            p = psutil.Process(pid)
            t = p.cpu_times()
            found[pid] = (
                " ".join(p.cmdline()[1:4])[:60],
                p.memory_info().rss,
                t.user + t.system + t.children_user + t.children_system,
            )
        except psutil.Error:
            continue
    return found


def breakdown(before: dict, after: dict, minutes: float) -> str:
    """Each process at the end of the window: its RSS, and its CPU per minute over the window."""
    parts = []
    for pid, (name, rss, cpu) in after.items():
        spent = cpu - before[pid][2] if pid in before else cpu
        parts.append(f"{name} {rss / 2**20:.0f} MiB, {spent / minutes:.2f} CPU-s/min")
    return "; ".join(parts)


def run(smoke: bool) -> list[Figure]:
    if smoke:
        why = "the smoke run starts no serve; the full run measures it"
        return [
            not_measured(8, "serve idle: resident memory of all processes", why, "<= 400 MB"),
            not_measured(8, "serve idle: CPU-seconds per minute", why, "<= 1 CPU-s/min"),
            not_measured(8, "processes outliving serve after SIGTERM", why, "none"),
        ]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = home_env(home)
        cli(env, "init")
        engine = make_engine(f"sqlite:///{home / 'rujukan.db'}")
        History(engine, Settings(home=home)).add(REFERRALS * 10, open_every=10)
        opened = open_count(engine)
        engine.dispose()
        serve = Serve(home, env)
        try:
            ready = serve.start()
            time.sleep(SETTLE)
            _, cpu0, _ = snapshot(home)
            first = per_process(home)
            start = time.monotonic()
            with Sampler(home, interval=1.0) as sampler:
                time.sleep(WINDOW)
            _, cpu1, _ = snapshot(home)
            minutes = (time.monotonic() - start) / 60
            where = breakdown(first, per_process(home), minutes)
        finally:
            stop_s, outlived = serve.stop()
    rss = sorted(s[1] for s in sampler.samples)
    median_rss = rss[len(rss) // 2] / 2**20 if rss else None
    counts = sorted({s[3] for s in sampler.samples})
    cpu_per_minute = (cpu1 - cpu0) / minutes
    return [
        Figure(
            row=8,
            what=f"serve idle with {opened:,} open referrals: resident memory, all processes "
            "(median)",
            unit="MiB",
            figure=None if median_rss is None else round(median_rss),
            target="<= 400 MB (381 MiB)",
            met=None if median_rss is None else median_rss * 2**20 <= 400e6,
            notes=f"peak {sampler.peak_rss / 2**20:.0f} MiB; processes seen: {counts}; "
            f"ready in {ready:.1f} s; at the end: {where}",
        ),
        Figure(
            row=8,
            what=f"serve idle: CPU-seconds per minute over {minutes * 60:.0f} s",
            unit="CPU-s/min",
            figure=round(cpu_per_minute, 2),
            target="<= 1 CPU-s/min",
            met=cpu_per_minute <= 1.0,
            notes="user+system of every process of the home, with the children they waited for",
        ),
        Figure(
            row=8,
            what="processes outliving serve after SIGTERM",
            unit="processes",
            figure=len(outlived),
            target="none",
            met=not outlived,
            notes=f"serve exited {stop_s:.1f} s after SIGTERM"
            + (f"; left: {', '.join(outlived)}" if outlived else ""),
        ),
    ]
