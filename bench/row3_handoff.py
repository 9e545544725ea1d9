"""Row 3: a hand-off, from an agency completing its step to the next agencies' messages arriving
at a local JSON receiver, through the web API (uvicorn of web.app in its own process) and through
the CLI (`rujukan step complete`): with a `rujukan serve` of the home running (the command is a
thin client of serve's command socket, cli/thin.py) and with none (the command does the work
itself); `rujukan --help`. Baseline: the engine's own work (the complete_step transaction) alone.
No Prefect server runs for the API and no-serve rounds: waking Prefect costs nothing there; the
serve rounds run with serve's Prefect, once its catch-up has given every referral its run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import select

from bench.common import (
    RUJUKAN,
    Figure,
    Serve,
    at_most,
    cli,
    free_port,
    home_env,
    median,
    percentile,
    prefect_count,
    receiver_config,
)
from bench.receiver import Receiver
from models.access import GrantKind, issue_grant
from models.actions import Actor, accept_step, complete_step, launch, load_step
from models.catalog import load_catalog
from models.database import engine_for, transaction
from models.directory import load_directory
from models.intake import Intake
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings
from models.step import Step
from notifications.relay import relay_now

INTAKE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
AGENCY, STEP = "polres-ppa", "identifikasi"
NEXT_MESSAGES = 2  # completing identification makes health and shelter ready
WEB = textwrap.dedent(
    """
    import sys, uvicorn
    from models.settings import get_settings
    from web.app import create_app
    uvicorn.run(create_app(get_settings()), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning")
    """
)


def prepare(settings: Settings, count: int) -> list[tuple[str, int]]:
    """`count` referrals whose identification step is accepted: (reference, step id)."""
    engine = engine_for(settings.resolved_database_url)
    catalog, sealer = load_catalog(settings), Sealer(settings.resolved_secret_key())
    police = Actor("agency", "bench", AGENCY)
    now = datetime.now(UTC)
    found = []
    with transaction(engine) as session:
        for _ in range(count):
            referral = launch(
                session,
                intake=Intake.model_validate(INTAKE),
                catalog=catalog,
                sealer=sealer,
                now=now,
            )
            step = load_step(
                session=session, reference=referral.reference, step_ref=STEP, agency=AGENCY
            )
            accept_step(session=session, step=step, actor=police, now=now)
            found.append((referral.reference, step.id))
    relay_now(settings)  # the first messages go now, not during the rounds
    return found


def wait(receiver: Receiver, count: int, timeout: float = 30) -> float | None:
    return receiver.wait_for(count, timeout)


def rounds_api(web: str, token: str, cases, receiver: Receiver) -> list[float]:
    timings = []
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
        for reference, step_id in cases:
            seen = len(receiver.arrivals)
            start = time.perf_counter()
            response = http.post(
                f"{web}/api/referrals/{reference}/steps/{step_id}/complete",
                json={"outcome": "served"},
            )
            response.raise_for_status()
            arrived = wait(receiver, seen + NEXT_MESSAGES)
            timings.append(arrived - start if arrived else float("inf"))
    return timings


def rounds_cli(env, cases, receiver: Receiver) -> list[float]:
    timings = []
    for reference, _ in cases:
        seen = len(receiver.arrivals)
        start = time.perf_counter()
        cli(env, "step", "complete", reference, STEP, "--agency", AGENCY, "--outcome", "served")
        arrived = wait(receiver, seen + NEXT_MESSAGES)
        timings.append(arrived - start if arrived else float("inf"))
    return timings


def rounds_engine(settings: Settings, cases) -> list[float]:
    engine = engine_for(settings.resolved_database_url)
    catalog = load_catalog(settings)
    police = Actor("agency", "bench", AGENCY)
    timings = []
    for reference, _ in cases:
        start = time.perf_counter()
        with transaction(engine) as session:
            step = load_step(session=session, reference=reference, step_ref=STEP, agency=AGENCY)
            complete_step(
                session=session, step=step, outcome="served", actor=police,
                now=datetime.now(UTC), catalog=catalog,
            )  # fmt: skip
        timings.append(time.perf_counter() - start)
    return timings


def help_times(env, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        cli(env, "--help")
        timings.append(time.perf_counter() - start)
    return timings


def rounds_through_serve(home: Path, env, cases, receiver: Receiver) -> tuple[list[float], str]:
    """The CLI rounds with `rujukan serve` running on the home; (timings, what was seen)."""
    server = Serve(home=home, env=env)
    try:
        ready = server.start()
        if not (home / "commands.sock").exists():
            raise RuntimeError(f"serve opened no command socket (see {server.log})")
        # Measure once serve's sweeper has given the referrals made so far their Prefect runs:
        # a hand-off then costs serve what it costs in steady use (one referral to bring up).
        references = [reference for reference, _ in cases]
        started, shown = time.monotonic(), 0
        while time.monotonic() - started < 300:
            shown = prefect_count(server.prefect_api, references)
            if shown == len(references):
                break
            time.sleep(2)
        caught_up = time.monotonic() - started
        timings = rounds_cli(env, cases, receiver)
    finally:
        took, left = server.stop()
    seen = (
        f"serve ready in {ready:.0f} s, its referrals in Prefect {shown}/{len(references)} after "
        f"{caught_up:.0f} s more; stopped in {took:.1f} s"
        + (f"; left behind: {left}" if left else "")
    )
    return timings, seen


def figures_for(label: str, timings: list[float], engine_p50: float, engine_p95: float):
    p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
    return [
        Figure(
            row=3,
            what=f"hand-off through the {label}, p50 of {len(timings)}",
            unit="s",
            figure=round(p50, 3),
            baseline=round(engine_p50, 4),
            baseline_what="the engine's transaction alone, p50",
            target="p50 <= 0.5 s",
            met=at_most(p50, 0.5),
        ),
        Figure(
            row=3,
            what=f"hand-off through the {label}, p95 of {len(timings)}",
            unit="s",
            figure=round(p95, 3),
            baseline=round(engine_p95, 4),
            baseline_what="the engine's transaction alone, p95",
            target="p95 <= 1.5 s",
            met=at_most(p95, 1.5),
        ),
    ]


def run(smoke: bool) -> list[Figure]:
    rounds = 3 if smoke else 50
    cli_rounds = 1 if smoke else 50  # a CLI command starts a Python process: seconds here
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = home_env(home)
        settings = Settings(
            home=home,
            secret_key="bench-secret-key",  # type: ignore[arg-type]
            apprise_config=home / "channels.yaml",
            allowed_webhook_hosts="127.0.0.1",
        )
        slugs = [a.slug for a in load_directory(settings.agencies_file).agencies]
        (home / "channels.yaml").write_text(receiver_config(receiver.port, slugs))
        cli(env, "init")
        serve_rounds = 0 if smoke else cli_rounds  # the smoke run starts no serve
        cases = prepare(settings, 2 * rounds + cli_rounds + serve_rounds)
        api_cases, engine_cases, cli_cases, serve_cases = (
            cases[:rounds],
            cases[rounds : 2 * rounds],
            cases[2 * rounds : 2 * rounds + cli_rounds],
            cases[2 * rounds + cli_rounds :],
        )
        catalog = load_catalog(settings)
        with transaction(engine_for(settings.resolved_database_url)) as session:
            _, token = issue_grant(
                session, kind=GrantKind.agency, agency=AGENCY, holder="bench", issued_by="bench",
                now=datetime.now(UTC), catalog=catalog, lifetime=timedelta(days=1),
            )  # fmt: skip
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-c", WEB, str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            api = rounds_api(f"http://127.0.0.1:{port}", token, api_cases, receiver)
        finally:
            web.terminate()
            web.wait(timeout=30)
        by_cli = rounds_cli(env, cli_cases, receiver)
        by_serve, serve_seen = (
            rounds_through_serve(home, env, serve_cases, receiver)
            if serve_rounds
            else ([], "no serve in the smoke run")
        )
        engine = rounds_engine(settings, engine_cases)
        helps = help_times(env, 1 if smoke else 5)
        with transaction(engine_for(settings.resolved_database_url)) as session:
            completed = len(session.exec(select(Step).where(Step.status == "completed")).all())
    receiver.close()
    e50, e95 = percentile(engine, 0.5), percentile(engine, 0.95)
    help_median = median(helps)
    return [
        *figures_for("web API", api, e50, e95),
        # The smoke run starts no serve (tests/test_bench_smoke.py): that figure is the full run's.
        *(
            figures_for("CLI (`rujukan step complete`) with serve running", by_serve, e50, e95)
            if by_serve
            else []
        ),
        *figures_for("CLI (`rujukan step complete`) without serve", by_cli, e50, e95),
        Figure(
            row=3,
            what=f"`rujukan --help` wall time, median of {len(helps)}",
            unit="s",
            figure=round(help_median, 3),
            baseline=None,
            target="<= 0.5 s",
            met=at_most(help_median, 0.5),
            notes=f"{completed} steps completed in all; {serve_seen}; interpreter: {RUJUKAN}",
        ),
    ]
