"""Benchmark: an idle sweep pass with a year of closed steps behind it costs the same as on an
empty database.

Run: .venv/bin/python -m bench.sweep_idle [--referrals 2000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from models.actions import launch
from models.catalog import load_catalog
from models.database import make_engine, migrate, transaction
from models.intake import Intake
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings
from models.step import Step, StepStatus
from models.sweep import sweep

INTAKE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())


def idle_pass_ms(engine, catalog, now, repeats: int = 50) -> float:
    """Median wall time of an idle sweep pass, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with transaction(engine) as session:
            assert sweep(session, catalog=catalog, now=now) == []
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'case.db'}"
        migrate(url)
        engine = make_engine(url)
        catalog = load_catalog(Settings(home=tmp))
        sealer = Sealer("bench")
        now = datetime(2026, 12, 7, 2, tzinfo=UTC)
        empty = idle_pass_ms(engine, catalog, now)
        intake = Intake.model_validate(INTAKE)
        start = time.perf_counter()
        with transaction(engine) as session:
            for _ in range(args.referrals):
                launch(
                    session,
                    intake=intake,
                    catalog=catalog,
                    sealer=sealer,
                    now=now - timedelta(days=365),
                )
            # a year of history: every step closed
            session.exec(update(Step).values(status=StepStatus.completed, next_check_at=None))  # type: ignore[call-overload]
        filled = time.perf_counter() - start
        with transaction(engine) as session:
            steps = session.exec(Step.__table__.select()).all()  # type: ignore[attr-defined]
        full = idle_pass_ms(engine, catalog, now)
        print(
            f"history: {args.referrals} referrals, {len(steps)} closed steps "
            f"(built in {filled:.1f} s)"
        )
        print(f"idle sweep pass, empty database: {empty:.2f} ms (median of 50)")
        print(f"idle sweep pass, with history:   {full:.2f} ms (median of 50)")


if __name__ == "__main__":
    main()
