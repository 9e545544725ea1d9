"""The task force's report over a generated history: how its time grows with the referrals.

    .venv/bin/python -m bench.report                      # 1,000 / 10,000 / 100,000 on SQLite
    .venv/bin/python -m bench.report --sizes 1000 10000 --postgres

For each size: the figures of a month, a quarter and the year (SQL aggregates and the durations'
percentiles), publishing (suppression), the charts and every output format. Prints figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--postgres", action="store_true", help="the local PostgreSQL as well")
    args = parser.parse_args()

    from sqlmodel import Session, func, select

    from models.catalog import load_catalog
    from models.database import engine_for, migrate, transaction
    from models.report import compute_report, parse_period, publish
    from models.report_output import charts, render
    from models.settings import get_settings
    from models.step import Step
    from tests.report.history import random_history

    catalog = load_catalog(get_settings())
    now = datetime(2026, 12, 31, 12, tzinfo=UTC)
    backends = ["sqlite"] + (["postgres"] if args.postgres else [])
    print(f"{'backend':<9} {'referrals':>9} {'steps':>8} {'generate':>9} "
          f"{'month':>7} {'quarter':>8} {'year':>7} {'publish':>8} {'charts':>7} "
          f"{'md':>6} {'html':>6} {'csv':>6} {'xlsx':>6}  (seconds)")  # fmt: skip
    for backend in backends:
        for size in args.sizes:
            url, drop = _database(backend)
            try:
                migrate(url)
                engine = engine_for(url)
                started = time.perf_counter()
                with transaction(engine) as session:
                    random_history(session, referrals=size)
                generated = time.perf_counter() - started
                # Fresh statistics, as autovacuum (PostgreSQL) would gather after a bulk load:
                # with none, PostgreSQL's planner takes the period for six referrals.
                with engine.connect() as connection:
                    connection.exec_driver_sql("ANALYZE")
                    connection.commit()
                with Session(engine) as session:
                    steps = session.exec(select(func.count()).select_from(Step)).one()
                timings = {}
                for label in ("2026-11", "2026-Q4", "2026"):
                    started = time.perf_counter()
                    with Session(engine) as session:
                        figures = compute_report(
                            session, catalog=catalog, period=parse_period(label), now=now
                        )
                    timings[label] = time.perf_counter() - started
                started = time.perf_counter()
                published = publish(figures, "id")
                timings["publish"] = time.perf_counter() - started
                started = time.perf_counter()
                drawn = charts(published)
                timings["charts"] = time.perf_counter() - started
                for fmt in ("md", "html", "csv", "xlsx"):
                    started = time.perf_counter()
                    render(published, fmt)
                    timings[fmt] = time.perf_counter() - started
                print(
                    f"{backend:<9} {size:>9,} {steps:>8,} {generated:>9.1f} "
                    f"{timings['2026-11']:>7.2f} {timings['2026-Q4']:>8.2f} "
                    f"{timings['2026']:>7.2f} {timings['publish']:>8.3f} "
                    f"{timings['charts']:>7.2f} {timings['md']:>6.2f} {timings['html']:>6.2f} "
                    f"{timings['csv']:>6.2f} {timings['xlsx']:>6.2f}  ({len(drawn)} charts)",
                    flush=True,
                )
            finally:
                drop()


def _database(backend: str):
    """A fresh database URL and a function that removes it."""
    from models.database import engine_for

    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="rujukan-bench-report-"))
        url = f"sqlite:///{folder / 'case.db'}"

        def drop() -> None:
            engine_for(url).dispose()
            for file in folder.iterdir():
                file.unlink()
            folder.rmdir()

        return url, drop
    import psycopg

    name = f"rujukan_bench_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    def drop_pg() -> None:
        engine_for(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop_pg


if __name__ == "__main__":
    main()
