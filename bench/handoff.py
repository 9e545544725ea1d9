"""Benchmark: from an agency completing its step to the next agency's message arriving.

Measures what the web inbox does on an action: the engine transaction, then `after_commit`
(the relay sends at once; Prefect is not running here, so waking it is a no-op).
Run: .venv/bin/python -m bench.handoff [--rounds 30]
Target (DESIGN.md): under 1 s typically.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.receiver import Receiver
from flows.wake import after_commit
from models.actions import Actor, accept_step, complete_step, launch, load_step
from models.catalog import load_catalog
from models.database import engine_for, migrate, transaction
from models.directory import load_directory
from models.intake import Intake
from models.seal import Sealer
from models.settings import PROJECT_ROOT, get_settings

INTAKE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "channels.yaml"
        os.environ.update(
            RUJUKAN_HOME=tmp,
            RUJUKAN_APPRISE_CONFIG=str(config),
            RUJUKAN_ALLOWED_WEBHOOK_HOSTS="127.0.0.1",
            RUJUKAN_SECRET_KEY="bench",
        )
        os.environ.pop("PREFECT_API_URL", None)
        get_settings.cache_clear()
        settings = get_settings()
        config.write_text(
            receiver.channel_config(
                [a.slug for a in load_directory(settings.agencies_file).agencies]
            )
        )
        migrate(settings.resolved_database_url)
        engine = engine_for(settings.resolved_database_url)
        catalog, sealer = load_catalog(settings), Sealer("bench")
        police = Actor("agency", "bench", "polres-ppa")
        timings = []
        for _ in range(args.rounds):
            now = datetime.now(UTC)
            with transaction(engine) as session:
                referral = launch(
                    session,
                    intake=Intake.model_validate(INTAKE),
                    catalog=catalog,
                    sealer=sealer,
                    now=now,
                )
                accept_step(
                    session=session,
                    step=load_step(
                        session=session,
                        reference=referral.reference,
                        step_ref="identifikasi",
                        agency="polres-ppa",
                    ),
                    actor=police,
                    now=now,
                )
            after_commit(settings, [referral.id])
            seen = len(receiver.arrivals)
            start = time.perf_counter()
            with transaction(engine) as session:
                complete_step(
                    session=session,
                    step=load_step(
                        session=session,
                        reference=referral.reference,
                        step_ref="identifikasi",
                        agency="polres-ppa",
                    ),
                    outcome="served",
                    actor=police,
                    now=datetime.now(UTC),
                    catalog=catalog,
                )
            after_commit(settings, [referral.id])
            arrived = receiver.wait_for(seen + 2, timeout=10)  # health and shelter
            timings.append((arrived - start) if arrived else float("inf"))
        timings.sort()
        print(f"rounds: {args.rounds}; complete -> both next agencies' messages received")
        print(
            f"median {statistics.median(timings) * 1000:.0f} ms, "
            f"p90 {timings[int(len(timings) * 0.9) - 1] * 1000:.0f} ms, "
            f"max {timings[-1] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
