"""The deployments `rujukan serve` serves, and the runner process that serves them."""

from __future__ import annotations

from models.settings import Settings, get_settings

SWEEP_DEPLOYMENT = "deadline-sweep/deadline-sweep"
BATCH_DEPLOYMENT = "launch-batch/launch-batch"
DEPLOYMENT_NAMES = ("referral", "deadline-sweep", "launch-batch")


def build_deployments(settings: Settings) -> list:
    """The referral, deadline-sweep (on its interval) and launch-batch deployments."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.launch import launch_batch
    from flows.referral import REFERRAL_DEPLOYMENT, referral_flow
    from flows.sweep import deadline_sweep

    return [
        referral_flow.to_deployment(
            name=REFERRAL_DEPLOYMENT,
            description="One run per referral, named by its reference code; Resume reconciles it.",
        ),
        deadline_sweep.to_deployment(
            name="deadline-sweep",
            interval=settings.sweep_interval_seconds,
            description="Reminders, overdue notices, escalations; tags, events and overdue tables.",
            # Two sweeps never double a notice, but a backlog of late runs after a restart would
            # only queue processes: one at a time, the rest cancelled.
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        ),
        launch_batch.to_deployment(
            name="launch-batch",
            description="Launch a JSON Lines file of intakes in one transaction and one run.",
        ),
    ]


def wait_until_served(settings: Settings, runner, timeout: float = 120.0) -> None:
    """Wait until the runner has registered every deployment, so the UI shows them all.

    Raise if the runner process exited or time ran out.
    """
    import time

    from prefect.client.orchestration import get_client

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


def main() -> None:
    """Serve the deployments until interrupted (the runner child of `rujukan serve`)."""
    from prefect import serve

    settings = get_settings()
    serve(*build_deployments(settings), limit=settings.serve_limit, print_starting_message=False)


if __name__ == "__main__":
    main()
