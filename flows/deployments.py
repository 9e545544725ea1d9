"""The deployments `rujukan serve` serves, and the runner (a thread of serve, or a process of
`serve --only worker`) that serves them."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import (
    ConcurrencyLimitConfig,
    ConcurrencyLimitStrategy,
    StateType,
)
from prefect.runner import Runner
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType
from prefect.utilities.callables import parameter_schema

from flows.referral import REFERRAL_DEPLOYMENT, REFERRAL_TAG, referral_flow
from flows.report import SCHEDULES, task_force_report
from flows.server import prefect_at
from flows.sweep import SWEEP_TAG, deadline_sweep
from models.settings import Settings, get_settings, open_private

log = logging.getLogger(__name__)

SWEEP_DEPLOYMENT = "deadline-sweep/deadline-sweep"
DEPLOYMENT_NAMES = ("referral", "deadline-sweep", "report-monthly", "report-quarterly")

# Every parameter a served deployment may take, with its JSON type. Anyone who reaches Prefect's
# API can run a deployment with parameters of their choosing, and Prefect's open-source server
# has no roles: a launch is authorised where the coordinator signs in (CLI, web, API), so no
# parameter may carry a file path, intake data, a person, an actor's name or a moment to act as
# of. A Prefect run only mirrors or reconciles what the case database holds.
SERVED_PARAMETERS: dict[str, dict[str, str]] = {
    "referral": {"reference": "string"},
    "deadline-sweep": {},
    # `span` is a code (month or quarter); a run writes only an artifact of aggregates.
    "report-monthly": {"span": "string"},
    "report-quarterly": {"span": "string"},
}


def check_parameters(name: str, schema: dict) -> None:
    """Refuse a served deployment whose parameters are not exactly the allowed ones."""
    allowed = SERVED_PARAMETERS.get(name)
    if allowed is None:
        raise ValueError(
            f"deployment {name!r} is not one Rujukan serves: {sorted(SERVED_PARAMETERS)}"
        )
    properties = schema.get("properties") or {}
    found = {key: spec.get("type", "?") for key, spec in properties.items()}
    if found != allowed:
        raise ValueError(
            f"deployment {name!r} takes parameters {found}, allowed are {allowed}: a served "
            "flow may take ids and codes only (flows/deployments.py SERVED_PARAMETERS)"
        )


def build_deployments(settings: Settings, sweep_schedule: bool = True) -> list:
    """The referral, deadline-sweep (on its interval) and the report (monthly, quarterly)
    deployments, parameters checked.

    Without `sweep_schedule` the sweep deployment has no schedule (a Run by hand still works):
    the all-in-one `rujukan serve` sweeps in its own process (flows.sweep.run_sweeper) rather
    than in a new flow-run process every interval.

    Entry points are module paths (flows.referral.referral_flow): a flow run imports the
    installed package, whatever folder serve was started in.
    """

    deployments = [
        referral_flow.to_deployment(
            name=REFERRAL_DEPLOYMENT,
            description="One run per referral, named by its reference code; Resume reconciles it.",
            tags=[REFERRAL_TAG],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        deadline_sweep.to_deployment(
            name="deadline-sweep",
            interval=settings.sweep_interval_seconds if sweep_schedule else None,
            description="Reminders, overdue notices, escalations; tags, events and overdue tables.",
            tags=[SWEEP_TAG],
            # Two sweeps never double a notice, but a backlog of late runs after a restart would
            # only queue processes: one at a time, the rest cancelled.
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
    ]
    for span, name in (("month", "report-monthly"), ("quarter", "report-quarterly")):
        deployments.append(
            task_force_report.to_deployment(
                name=name,
                schedules=[Cron(SCHEDULES[span], timezone=settings.timezone)],
                parameters={"span": span},
                description=f"The task force's report of the last {span}: artifact "
                "report-<period> with charts; small cells suppressed.",
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    flows = (referral_flow, deadline_sweep, task_force_report, task_force_report)
    for deployment, served in zip(deployments, flows, strict=True):
        check_parameters(deployment.name, parameter_schema(served).model_dump())
    return deployments


def wait_until_served(runner, timeout: float = 120.0) -> None:
    """Wait until the runner has registered every deployment, so the UI shows them all.

    Raise if the runner process exited or time ran out.
    """

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            served = {deployment.name for deployment in client.read_deployments()}
            if served >= set(DEPLOYMENT_NAMES):
                return
            if runner.poll() is not None:
                raise RuntimeError(f"the flow runner exited with status {runner.returncode}")
            time.sleep(0.5)
    raise TimeoutError(f"the flow runner did not register its deployments within {timeout:.0f} s")


def unschedule_sweep(client) -> int:
    """Take the interval schedule off the sweep deployment, and the runs it made ahead; return
    how many runs were deleted. For the all-in-one serve, which sweeps in its own process: a home
    an earlier version served keeps the schedule (Prefect preserves a deployment's schedules
    when it is served again without one), and its runs would sweep in a second writer."""
    deployment = client.read_deployment_by_name(SWEEP_DEPLOYMENT)
    for schedule in deployment.schedules:
        client.delete_deployment_schedule(deployment.id, schedule.id)
    waiting = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
        limit=200,
    )
    for run in waiting:
        client.delete_flow_run(run.id)
    return len(waiting)


RUNNER_LOGGERS = ("prefect.runner", "prefect.flow_runs.runner")
POLL_SECONDS = 5  # how often a runner asks for runs to start: a Resume is picked up within 5 s


class RunnerThread:
    """Prefect's Runner serving the deployments from a thread of `rujukan serve`, not a process
    of its own (about 130 MiB less). A manager's Resume or a Run by hand still starts the flow run
    as a new process (`python -m prefect.engine`, spawned by exec: safe from a process with other
    threads), which inherits serve's environment; `stop` cancels what still runs, as the
    runner's SIGTERM did. The sweep deployment has no schedule: serve sweeps itself.

    `poll()` and `returncode` answer as a process's do, for serve's watch over its children.
    """

    def __init__(self, settings: Settings, url: str, log_file: Path) -> None:
        self.settings, self.url = settings, url
        self.returncode: int | None = None
        open_private(log_file, "ab").close()  # owner-only before logging opens it
        self._log = logging.FileHandler(log_file)
        self._log.setFormatter(
            logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
        )
        self._runner: Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, name="flow-runner", daemon=True)

    def start(self) -> RunnerThread:
        # What the runner says (runs submitted, processes ended, shutdown) goes to its log.
        for name in RUNNER_LOGGERS:
            logging.getLogger(name).addHandler(self._log)
        self._thread.start()
        return self

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def _run(self) -> None:
        try:
            with prefect_at(self.url, self.settings):
                deployments = build_deployments(self.settings, sweep_schedule=False)
                asyncio.run(self._serve(deployments))
            self.returncode = 0
        except BaseException as exc:  # noqa: BLE001 - serve sees the thread end and stops
            log.error("flow runner stopped: %s: %s", type(exc).__name__, exc)
            self.returncode = 1

    async def _serve(self, deployments: list) -> None:
        self._loop, self._main = asyncio.get_running_loop(), asyncio.current_task()
        # As prefect.serve has it; no signal handlers: Runner.start sets none outside the main
        # thread.
        self._runner = Runner(
            query_seconds=POLL_SECONDS, limit=self.settings.serve_limit, pause_on_shutdown=True
        )
        for deployment in deployments:
            await self._runner.aadd_deployment(deployment)
        await self._runner.start()

    async def _stop(self) -> None:
        if self._runner is not None and self._runner.started:
            await self._runner.astop()  # cancels the flow runs under way, then the polling
        elif self._main is not None:
            self._main.cancel()  # still registering the deployments

    def stop(self, timeout: float = 20) -> None:
        """Stop serving and wait for the thread (at most `timeout` seconds)."""
        if self._loop is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout)
            except Exception as exc:  # noqa: BLE001 - the loop closed meanwhile, or timed out
                log.warning("flow runner: %s while stopping", type(exc).__name__)
        self._thread.join(timeout)
        for name in RUNNER_LOGGERS:
            logging.getLogger(name).removeHandler(self._log)
        self._log.close()


def main() -> None:
    """Serve the deployments until interrupted (the runner process of `serve --only worker`)."""

    settings = get_settings()
    serve(*build_deployments(settings), limit=settings.serve_limit, print_starting_message=False)


if __name__ == "__main__":
    main()
