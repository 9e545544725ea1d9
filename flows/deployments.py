"""The deployments `rujukan serve` serves, and the runner process that serves them."""

from __future__ import annotations

import sys
import time

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
from prefect.schedules import Cron
from prefect.utilities.callables import parameter_schema

from flows.referral import REFERRAL_DEPLOYMENT, REFERRAL_TAG, referral_flow
from flows.report import SCHEDULES, task_force_report
from flows.sweep import SWEEP_TAG, deadline_sweep
from models.settings import Settings, get_settings

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
    """

    deployments = [
        referral_flow.to_deployment(
            name=REFERRAL_DEPLOYMENT,
            description="One run per referral, named by its reference code; Resume reconciles it.",
            tags=[REFERRAL_TAG],
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


UNSCHEDULED_SWEEP = "--unscheduled-sweep"  # the runner of an all-in-one serve, which sweeps itself


def main(argv: list[str]) -> None:
    """Serve the deployments until interrupted (the runner child of `rujukan serve`)."""

    settings = get_settings()
    deployments = build_deployments(settings, sweep_schedule=UNSCHEDULED_SWEEP not in argv)
    serve(*deployments, limit=settings.serve_limit, print_starting_message=False)


if __name__ == "__main__":
    main(sys.argv[1:])
