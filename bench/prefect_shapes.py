"""Measure two shapes of "a referral is a Prefect flow run" on this machine, and print figures.

Shape A (DESIGN.md decision 3 as written): a served deployment whose run reconciles and then
suspends; every wake-up is a resume, which the runner executes in a new process.
Shape B (what flows/referral.py does): the referral's run is created Suspended through the API
and kept up to date (tags, history task runs, artifact) by the process that made the change; a
process runs only when someone presses Resume.

Run: .venv/bin/python bench/prefect_shapes.py [N]   (default N=12 referrals)
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

N = int(sys.argv[1]) if len(sys.argv) > 1 else 12
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_cpu() -> float:
    """CPU seconds of every child process that has exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


SERVED = textwrap.dedent(
    """
    import uuid
    from prefect import flow, task
    from prefect.flow_runs import suspend_flow_run

    @task
    def reconcile(reference: str) -> str:
        return reference

    @flow(name="referral-a", persist_result=False)
    def referral_a(reference: str) -> None:
        reconcile(reference)
        suspend_flow_run(timeout=None, key=str(uuid.uuid4()))

    if __name__ == "__main__":
        referral_a.serve(name="referral-a", limit=4)
    """
)


async def wait_states(client, ids, names: set[str], since: float, timeout: float = 600) -> float:
    """Seconds until every run in `ids` is in a state named in `names`."""
    while time.monotonic() - since < timeout:
        runs = [await client.read_flow_run(i) for i in ids]
        if all(r.state and r.state.name in names for r in runs):
            return time.monotonic() - since
        await asyncio.sleep(0.5)
    raise TimeoutError(names)


async def shape_a(env: dict, workdir: Path) -> dict:
    """Served deployment, suspend between events, resume per wake-up."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import aresume_flow_run

    script = workdir / "served.py"
    script.write_text(SERVED)
    cpu0 = children_cpu()
    runner = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with get_client() as client:
        while True:
            try:
                deployment = await client.read_deployment_by_name("referral-a/referral-a")
                break
            except Exception:
                await asyncio.sleep(0.5)
        t0 = time.monotonic()
        ids = []
        for n in range(N):
            run = await client.create_flow_run_from_deployment(
                deployment.id, parameters={"reference": f"RJK-A{n:03d}"}, name=f"RJK-A{n:03d}"
            )
            ids.append(run.id)
        to_suspended = await wait_states(client, ids, {"Suspended"}, t0)
        t1 = time.monotonic()
        for i in ids:
            await aresume_flow_run(i)
        resumed = await wait_states(client, ids, {"Suspended"}, t1)
    runner.send_signal(signal.SIGINT)
    runner.wait(timeout=60)
    cpu = children_cpu() - cpu0
    return {
        "launch_to_suspended_s": round(to_suspended, 1),
        "resume_all_s": round(resumed, 1),
        "processes": 2 * N,
        "runner_cpu_s": round(cpu, 1),
        "cpu_per_wake_s": round(cpu / (2 * N), 2),
    }


async def shape_b() -> dict:
    """Runs created Suspended through the API, kept current by the process that made the change."""
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.states import Completed, Suspended

    @flow(name="referral-b")
    def referral_b(reference: str) -> None:  # never executed here: the deployment is a target
        """A stand-in."""

    @task(name="history")
    def history() -> None:
        """A stand-in."""

    async with get_client() as client:
        flow_id = await client.create_flow(referral_b)
        deployment_id = await client.create_deployment(flow_id=flow_id, name="referral-b")
        cpu0, t0 = time.process_time(), time.monotonic()
        for n in range(N):
            run = await client.create_flow_run_from_deployment(
                deployment_id,
                parameters={"reference": f"RJK-B{n:03d}"},
                name=f"RJK-B{n:03d}",
                state=Suspended(),
                idempotency_key=f"referral-RJK-B{n:03d}",
                tags=["pathway:tppo-dewasa", "agency:polres-ppa"],
            )
            for seq in range(4):
                await client.create_task_run(
                    history,
                    run.id,
                    dynamic_key=str(seq),
                    name=f"ready step-{seq}",
                    state=Completed(),
                )
            await client.create_artifact(
                ArtifactCreate(
                    key=f"referral-rjk-b{n:03d}",
                    type="markdown",
                    data="| step |\n|---|\n| x |",
                    flow_run_id=run.id,
                )
            )
            await client.update_flow_run(run.id, tags=["pathway:tppo-dewasa", "agency:dinkes"])
        per = (time.monotonic() - t0) / N
        cpu = (time.process_time() - cpu0) / N
    return {
        "per_referral_ms": round(per * 1000),
        "client_cpu_per_referral_ms": round(cpu * 1000),
        "processes": 0,
    }


def main() -> None:
    """Start a throwaway Prefect server, measure both shapes, print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = dict(
            os.environ,
            PREFECT_HOME=tmp,
            PREFECT_API_URL=api,
            DO_NOT_TRACK="1",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_API_URL=api,
            PREFECT_RUNNER_POLL_FREQUENCY="2",
        )
        os.environ.update(env)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            t0 = time.monotonic()
            while True:
                try:
                    if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            print(f"server up in {time.monotonic() - t0:.1f} s; N={N} referrals, runner poll 2 s")
            print("shape B (API-kept runs):", asyncio.run(shape_b()))
            figures = asyncio.run(shape_a(env, Path(tmp)))
            print("shape A (served + suspend/resume, limit 4):", figures)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
