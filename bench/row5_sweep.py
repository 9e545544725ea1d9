"""Row 5: the deadline sweep over a large history (models.sweep.sweep, as serve's sweep calls
it) vs selecting the due rows; the idle pass as the history grows; SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select

from bench.common import Figure, not_measured, temp_postgres
from bench.history import NOW, History, prepare
from models.catalog import load_catalog
from models.database import transaction
from models.settings import Settings
from models.step import OPEN, Step
from models.sweep import sweep

TARGET_PASS = "5,000 notices <= 1 s in one pass"


def idle_ms(engine, catalog, repeats: int = 30) -> float:
    """Median wall time of a sweep pass with nothing due, in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with transaction(engine) as session:
            found = sweep(session, catalog=catalog, now=NOW)
        times.append((time.perf_counter() - start) * 1000)
        assert not found, "an idle pass found notices"
    return sorted(times)[len(times) // 2]


def server_cpu_s(engine) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends of this database (the benchmark's own
    throwaway one: only its connections), read from /proc: a local server on Linux; else None."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        try:
            return sum(int(Path(f"/proc/{p}/schedstat").read_text().split()[0]) for p in pids) / 1e9
        except (OSError, ValueError, IndexError):
            return None


def select_due_ms(engine) -> tuple[float, int]:
    """The baseline: one query for the due open steps (what any sweep must read)."""
    start = time.perf_counter()
    with transaction(engine) as session:
        rows = session.exec(
            select(Step).where(Step.next_check_at <= NOW, Step.status.in_(OPEN))  # type: ignore[operator,attr-defined]
        ).all()
    return (time.perf_counter() - start) * 1000, len(rows)


def measure(url: str, label: str, sizes: list[int], due: int, settings: Settings) -> list[Figure]:
    engine = prepare(url, settings)
    catalog = load_catalog(settings)
    history = History(engine, settings)
    figures = []
    idle = {}
    built = 0.0
    for size in sizes:
        start = time.perf_counter()
        history.add(size - history.steps)
        built += time.perf_counter() - start
        idle[size] = idle_ms(engine, catalog)
    smallest, largest = sizes[0], sizes[-1]
    for size in sizes:
        figures.append(
            Figure(
                row=5,
                what=f"idle sweep pass, {size:,} steps ({label})",
                unit="ms",
                figure=round(idle[size], 2),
                baseline=round(idle[smallest], 2),
                baseline_what=f"idle pass at {smallest:,} steps",
                target="flat: <= 2x the smallest history",
                met=idle[size] <= 2 * idle[smallest] + 0.5,
            )
        )
    made = history.make_due(due, NOW)
    baseline_ms, selected = select_due_ms(engine)
    passes, notices = 0, 0
    server_before = server_cpu_s(engine)
    cpu_start = time.process_time()
    start = time.perf_counter()
    first_pass = None
    while True:
        with transaction(engine) as session:
            found = sweep(session, catalog=catalog, now=NOW)
        passes += 1
        notices += len(found)
        if first_pass is None:
            first_pass = len(found)
        if not found or passes > 1000:
            break
    took = (time.perf_counter() - start) * 1000
    # The pass is CPU work on a 2-core machine others share: its CPU time says what the code
    # costs whatever the load, where the wall time also says how busy the machine was.
    cpu = f"CPU {(time.process_time() - cpu_start) * 1000:,.0f} ms in this process"
    server_after = server_cpu_s(engine)
    if server_before is not None and server_after is not None:
        cpu += f" + {(server_after - server_before) * 1000:,.0f} ms in PostgreSQL's backends"
    one_pass = first_pass == made
    figures.append(
        Figure(
            row=5,
            what=f"sweep recording {made:,} overdue notices over {largest:,} steps "
            f"({label}), all passes",
            unit="ms",
            figure=round(took, 1),
            baseline=round(baseline_ms, 1),
            baseline_what=f"selecting the {selected:,} due rows",
            target=TARGET_PASS if due >= 5000 else "all notices in one pass, <= 1 s",
            met=one_pass and took <= 1000,
            notes=f"{passes - 1} pass(es) recorded {notices:,} notices (the first {first_pass:,});"
            f" {cpu}; history of {largest:,} steps built with bulk inserts in {built:.1f} s",
        )
    )
    engine.dispose()
    return figures


def run(smoke: bool) -> list[Figure]:
    sizes = [1_000, 10_000] if smoke else [10_000, 100_000, 1_000_000]
    due = 50 if smoke else 5_000
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        figures += measure(f"sqlite:///{tmp}/case.db", "SQLite", sizes, due, settings)
        with temp_postgres() as url:
            if url is None:
                figures.append(
                    not_measured(5, "sweep on PostgreSQL", "no PostgreSQL at 127.0.0.1:5432")
                )
            else:
                figures += measure(url, "PostgreSQL", sizes, due, settings)
    return figures
