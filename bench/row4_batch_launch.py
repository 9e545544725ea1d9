"""Row 4: a batch launch into the database alone (models.actions.launch_many of every intake in
one transaction, as `rujukan launch --batch` does before it sends) vs a bare Core insert of the very
rows it wrote, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlmodel import SQLModel

from bench.common import Figure, not_measured, temp_postgres
from bench.history import prepare
from bench.mass_rescue import intakes
from models.actions import launch_many
from models.catalog import load_catalog
from models.database import transaction
from models.intake import Intake
from models.seal import Sealer
from models.settings import Settings

TARGET = "<= 2x the bare insert (about 1,000 referrals/s on SQLite)"


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar())
            for t in SQLModel.metadata.sorted_tables
        }


def measure(url: str, bare_url: str, label: str, count: int, settings: Settings) -> list[Figure]:
    engine = prepare(url, settings)
    catalog = load_catalog(settings)
    sealer = Sealer("bench-secret-key")
    rows = [Intake.model_validate(r) for r in intakes(count, random.Random(7))]
    before = counts(engine)
    now = datetime.now(UTC)
    start = time.perf_counter()
    with transaction(engine) as session:
        launch_many(session, intakes=rows, catalog=catalog, sealer=sealer, now=now, batch="bench")
    took = time.perf_counter() - start
    after = counts(engine)
    written = [t for t in SQLModel.metadata.sorted_tables if after[t.name] > before[t.name]]
    with engine.connect() as conn:
        data = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in written}
    total = sum(len(v) for v in data.values())
    bare = prepare(bare_url, settings)
    start = time.perf_counter()
    with bare.begin() as conn:
        for table in written:
            conn.execute(insert(table), data[table.name])
    bare_took = time.perf_counter() - start
    engine.dispose()
    bare.dispose()
    per_table = ", ".join(f"{t.name} {len(data[t.name]):,}" for t in written)
    return [
        Figure(
            row=4,
            what=f"batch launch of {count:,} referrals, one transaction ({label})",
            unit="s",
            figure=round(took, 3),
            baseline=round(bare_took, 3),
            baseline_what=f"bare Core insert of the same {total:,} rows",
            target=TARGET,
            met=took <= 2 * bare_took,
            notes=f"{count / took:,.0f} referrals/s; rows: {per_table}",
        )
    ]


def run(smoke: bool) -> list[Figure]:
    count = 20 if smoke else 1000
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        figures += measure(
            f"sqlite:///{tmp}/case.db", f"sqlite:///{tmp}/bare.db", "SQLite", count, settings
        )
        with temp_postgres() as url, temp_postgres() as bare_url:
            if url is None or bare_url is None:
                figures.append(
                    not_measured(4, "batch launch on PostgreSQL", "no PostgreSQL at 127.0.0.1:5432")
                )
            else:
                figures += measure(url, bare_url, "PostgreSQL", count, settings)
    return figures
