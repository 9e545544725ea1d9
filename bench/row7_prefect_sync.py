"""Row 7: keeping one referral's Prefect view current (flows.referral.sync_referrals after a
change: its run, tags, history task runs and table artifact) vs a bare flow run (a trivial
@flow run in this process) on the same Prefect server. Shapes of the two designs are compared
at length in bench/prefect_shapes.py."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, free_port, median, not_measured
from flows.server import prefect_at, start_server, wait_until_healthy
from models.actions import Actor, accept_step, launch, load_step
from models.catalog import load_catalog
from models.database import engine_for, migrate, transaction
from models.intake import Intake
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings

INTAKE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())


def run(smoke: bool) -> list[Figure]:
    if smoke:
        return [
            not_measured(
                7,
                "keeping one referral's Prefect view current",
                "the smoke run starts no Prefect server; the full run measures it",
                "<= 1.2x a bare flow run",
            )
        ]
    rounds = 12
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            home=Path(tmp),
            prefect_port=free_port(),
            secret_key="bench-secret-key",  # type: ignore[arg-type]
        )
        url = f"http://127.0.0.1:{settings.prefect_port}/api"
        server = start_server(settings, Path(tmp) / "logs" / "prefect.log")
        try:
            wait_until_healthy(url, settings, server)
            migrate(settings.resolved_database_url)
            engine = engine_for(settings.resolved_database_url)
            catalog, sealer = load_catalog(settings), Sealer("bench-secret-key")
            with prefect_at(url, settings):
                from prefect import flow
                from prefect.client.orchestration import get_client

                from flows.referral import sync_referrals

                @flow(name="bench-bare", persist_result=False)
                def bare() -> None:
                    """A flow run that does nothing."""

                bare()  # warm up: the flow, its deployment-free run path
                bare_times = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    bare()
                    bare_times.append(time.perf_counter() - start)
                new_times, change_times = [], []
                police = Actor("agency", "bench", "polres-ppa")
                with get_client(sync_client=True) as client:
                    for n in range(rounds + 1):
                        now = datetime.now(UTC)
                        with transaction(engine) as session:
                            referral = launch(
                                session, intake=Intake.model_validate(INTAKE), catalog=catalog,
                                sealer=sealer, now=now,
                            )  # fmt: skip
                        start = time.perf_counter()
                        sync_referrals(settings, [referral.id], client)
                        created = time.perf_counter() - start
                        with transaction(engine) as session:
                            step = load_step(
                                session=session, reference=referral.reference,
                                step_ref="identifikasi", agency="polres-ppa",
                            )  # fmt: skip
                            accept_step(session=session, step=step, actor=police, now=now)
                        start = time.perf_counter()
                        sync_referrals(settings, [referral.id], client)
                        changed = time.perf_counter() - start
                        if n:  # the first round warms up the deployment and the client
                            new_times.append(created)
                            change_times.append(changed)
        except Exception as exc:  # noqa: BLE001 - said in the table, not hidden
            return [not_measured(7, "keeping one referral's Prefect view current", repr(exc))]
        finally:
            server.terminate()
            server.wait(timeout=30)
    bare_median = median(bare_times)
    figures = []
    for what, times in (
        ("a new referral's run (run, tags, history, table)", new_times),
        ("after a change (accept: tags, history, table)", change_times),
    ):
        figure = median(times)
        figures.append(
            Figure(
                row=7,
                what=f"Prefect view kept current, {what}, median of {len(times)}",
                unit="s",
                figure=round(figure, 3),
                baseline=round(bare_median, 3),
                baseline_what="a bare @flow run on the same server, median",
                target="<= 1.2x a bare flow run",
                met=figure <= 1.2 * bare_median,
            )
        )
    return figures
