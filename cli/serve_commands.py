"""`rujukan serve` (everything in one command) and `rujukan sweep` (one deadline sweep now)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import JsonFlag

if TYPE_CHECKING:
    from models.settings import Settings


def secure_home(settings: Settings) -> list[Path]:
    """Make the home owner-only (a home of an older version was 0755 with 0644 files), and say
    on stderr what was tightened."""
    from models.settings import restrict_umask, tighten_home

    restrict_umask()  # before anything is written: serve's children inherit it
    changed = tighten_home(settings)
    if changed:
        typer.echo(
            f"warning: {len(changed)} paths in {settings.home} were readable by other users; "
            f"now owner-only (folders 0700, files 0600): {_summary(changed, settings.home)}",
            err=True,
        )
    return changed


def _summary(paths: list[Path], home: Path) -> str:
    """The tightened paths by top-level entry of the home: '., logs/ (3), secret.key'."""
    counts: dict[str, int] = {}
    for path in paths:
        try:
            parts = path.relative_to(home).parts
        except ValueError:  # the case database, kept outside the home
            parts = (str(path),)
        folder = len(parts) > 1 or path.is_dir()
        top = "." if not parts else parts[0] + ("/" if folder else "")
        counts[top] = counts.get(top, 0) + 1
    return ", ".join(
        name if count == 1 or not name.endswith("/") else f"{name} ({count})"
        for name, count in sorted(counts.items())
    )


def prepare_prefect(
    settings: Settings, automations: bool = True, catch_up: bool = True
) -> dict[str, object]:
    """With Prefect reachable: create the shipped automation and catch up on missed changes.

    Without `automations` only the catch-up: the workers of a larger deployment start together,
    and `rujukan init` creates the automation once. Without `catch_up` only the automation: the
    all-in-one serve's sweeper catches up behind its ready line.
    """
    from flows.server import prefect_at, reachable_api

    url = reachable_api(settings)
    if url is None:
        return {"prefect": "not reachable"}
    from prefect.client.orchestration import get_client  # noqa: PLC0415

    from flows.automations import ensure_automations  # noqa: PLC0415
    from flows.referral import catch_up as sync_missed  # noqa: PLC0415

    with prefect_at(url, settings):
        created = ensure_automations(settings) if automations else []
        synced = 0
        if catch_up:
            with get_client(sync_client=True) as client:
                synced = sync_missed(settings, client)
    return {"prefect": url, "automations_created": created, "referrals_synced": synced}


def sweep(as_json: JsonFlag = False) -> None:
    """Run one deadline sweep now: reminders, overdue notices, escalations, and their messages.

    With Prefect reachable it runs as a `deadline-sweep` flow run (tags, events, tables);
    without, it sweeps and sends all the same and says so.

    Example: rujukan sweep --json
    """
    from flows.server import prefect_at, reachable_api
    from models.settings import get_settings

    settings = get_settings()
    url = reachable_api(settings)
    if url is not None:
        from flows.sweep import deadline_sweep  # noqa: PLC0415

        with prefect_at(url, settings):
            summary: dict[str, object] = dict(deadline_sweep())
        summary["prefect"] = "updated"
    else:
        from flows.sweep import sweep_and_relay  # noqa: PLC0415

        result = sweep_and_relay(settings)
        summary = {
            **result.counts(),
            "sent": result.sent,
            "failed": result.failed,
            "prefect": "not reachable: Prefect catches up at its next sweep",
        }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(", ".join(f"{k}: {v}" for k, v in summary.items()))


# The parts `rujukan serve --only` can run on one host (docs/deploy.md draws the topology).
PARTS = ("api", "services", "worker", "inbox", "relay")


def parse_parts(only: str) -> frozenset[str]:
    """The parts named by --only (comma-separated), or BadInput saying which exist."""
    from models.errors import BadInput

    names = frozenset(name.strip() for name in only.split(",") if name.strip())
    unknown = sorted(names - set(PARTS))
    if not names or unknown:
        raise BadInput(
            f"--only takes a comma-separated list of {', '.join(PARTS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return names


def _start_runner(env: dict[str, str], logs: Path) -> subprocess.Popen:
    """The flow runner of `serve --only worker`: a process serving the deployments
    (flows.deployments); the all-in-one serve runs it in a thread (RunnerThread)."""
    from flows.deployments import POLL_SECONDS  # noqa: PLC0415
    from models.settings import PRIVATE_UMASK, PROJECT_ROOT, open_private

    env = {**env, "PREFECT_RUNNER_POLL_FREQUENCY": str(POLL_SECONDS)}
    with open_private(logs / "prefect-runner.log", "ab") as runner_log:
        return subprocess.Popen(
            [sys.executable, "-m", "flows.deployments"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=runner_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=PRIVATE_UMASK,  # the runner and its flow runs write owner-only files
        )


def _start_web(settings: Settings):
    """Start the web inbox in a thread if web/app.py exists; return the uvicorn server or None."""
    from models.settings import PROJECT_ROOT

    if not (PROJECT_ROOT / "web" / "app.py").exists():
        return None
    import uvicorn  # noqa: PLC0415

    from web.app import create_app  # noqa: PLC0415

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.web_host,
            port=settings.web_port,
            log_level="warning",
        )
    )
    server.install_signal_handlers = lambda: None  # serve handles Ctrl-C for everyone
    server.thread = threading.Thread(target=server.run, name="web", daemon=True)
    server.thread.start()
    return server


def _stop_process(process: subprocess.Popen, name: str, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            typer.echo(f"{name} did not stop in {timeout:.0f} s; killing it", err=True)
            process.kill()
            process.wait()
    _end_session(process.pid)


def _end_session(leader: int, grace: float = 5.0) -> None:
    """End what a child started in its own session and left behind (a flow run stuck in
    Prefect's queue drain at exit): nothing `serve` started outlives it."""
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(leader, sig)
        except (ProcessLookupError, PermissionError):
            return  # the group is gone (or was never a group of ours)
        while time.monotonic() < deadline:
            try:
                os.killpg(leader, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def serve(
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Also launch sample referrals with synthetic "
            "people that go overdue within a minute.",
        ),
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Run only these parts, comma-separated: api (Prefect's API and UI), services "
            "(Prefect's background services), worker (serves the referral and sweep flows), "
            "inbox (the web inbox), relay (sends the outbox). For hosts of a larger deployment "
            "(docs/deploy.md); the other parts run elsewhere.",
        ),
    ] = None,
) -> None:
    """Run everything: Prefect server and UI, the flows, the notification relay and the web inbox.

    Ctrl-C stops it cleanly; started again it carries on where it stopped. With --only, a host
    runs just its parts of a larger deployment.

    Example: rujukan serve --demo
    Example: rujukan serve --only worker,relay
    """
    from flows.server import (
        check_bind_address,
        deliver_logs,
        is_healthy,
        limit_malloc_arenas,
        own_api_url,
        prefect_at,
        server_environment,
        serving_file,
        start_server,
        wait_until_healthy,
    )
    from models.catalog import load_catalog, register_pathways
    from models.clock import utcnow
    from models.database import engine_for, migrate, transaction
    from models.errors import BadInput
    from models.seal import ensure_secret_key
    from models.settings import get_settings, make_private_dir, open_private, record_settings

    settings = get_settings()
    if only is not None:
        if demo:
            raise BadInput("--demo runs everything on one host: leave out --only")
        serve_parts(settings, parse_parts(only))
        return
    limit_malloc_arenas()  # before any thread starts
    secure_home(settings)
    check_bind_address(settings)
    url = own_api_url(settings)
    if is_healthy(url, settings):
        raise BadInput(
            f"something already answers at {url}: stop it, or set RUJUKAN_PREFECT_PORT "
            "(and RUJUKAN_WEB_PORT) to run a second instance"
        )
    # What serve runs with becomes the home's settings: another shell's commands agree with it.
    record_settings(settings)
    migrate(settings.resolved_database_url)
    ensure_secret_key(settings, engine_for(settings.resolved_database_url))
    catalog = load_catalog(settings)
    with transaction(engine_for(settings.resolved_database_url)) as session:
        register_pathways(session, catalog, utcnow())
    from notifications.channels import ensure_demo_config  # noqa: PLC0415

    ensure_demo_config(settings)

    logs = make_private_dir(settings.home / "logs")
    stop = threading.Event()

    def _on_signal(_signum, _frame) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[tuple[subprocess.Popen, str]] = []
    mailbox = web = sweeper = runner = commands = None
    marker = serving_file(settings)
    try:
        ui = url.removesuffix("/api")
        typer.echo(f"starting Prefect at {ui} (log: {logs / 'prefect-server.log'})")
        server = start_server(settings, logs / "prefect-server.log")
        children.append((server, "Prefect server"))
        wait_until_healthy(url, settings, server)
        # The settings a command of this home must share to be run here (cli/thin.py): the
        # environment serve was started with, before the children's is added to it.
        started_with = dict(os.environ)
        # Serve's environment becomes its children's: the flow runs that its runner thread
        # starts inherit Prefect's home and API and the resolved paths, and print only warnings
        # here (their logs are in the Prefect UI). Set before Prefect loads here and before any
        # thread starts; the Prefect server, started above, keeps its own.
        os.environ.update(
            server_environment(settings), PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING"
        )
        with open_private(marker, "w") as handle:
            # "sweeper": commands leave their referrals' Prefect runs to it (flows.wake).
            handle.write(json.dumps({"api_url": url, "pid": os.getpid(), "sweeper": True}))

        from flows.deployments import RunnerThread  # noqa: PLC0415

        runner = RunnerThread(settings, url, logs / "prefect-runner.log").start()

        from notifications.mailbox import start_mailbox  # noqa: PLC0415
        from notifications.relay import run_relay  # noqa: PLC0415

        try:
            mailbox = start_mailbox(settings)
        except OSError as exc:
            typer.echo(
                f"demo mailbox not started ({exc.__class__.__name__}: port "
                f"{settings.mailbox_port} busy?)",
                err=True,
            )
        threading.Thread(target=run_relay, args=(settings, stop), name="relay", daemon=True).start()
        try:
            web = _start_web(settings)
        except Exception as exc:  # noqa: BLE001 - the engine and the messages matter more
            typer.echo(f"web inbox not started: {exc.__class__.__name__}: {exc}", err=True)
        from cli.command_socket import start_command_socket  # noqa: PLC0415

        # `rujukan step ...` of this home: run here, where the engine is loaded (cli/thin.py).
        commands = start_command_socket(settings, started_with)

        from prefect.client.orchestration import get_client  # noqa: PLC0415

        from flows.deployments import unschedule_sweep, wait_until_served  # noqa: PLC0415
        from flows.sweep import run_sweeper  # noqa: PLC0415

        with prefect_at(url, settings):
            wait_until_served(runner)
            with get_client(sync_client=True) as client:
                unschedule_sweep(client)
        status = prepare_prefect(settings, catch_up=False)
        # Sweeps, and Prefect's catch-up between them (a backlog goes on behind the ready line).
        sweeper = threading.Thread(
            target=run_sweeper, args=(settings, url, stop), name="sweeper", daemon=True
        )
        sweeper.start()
        if demo:
            from flows.demo import run_demo, wait_until_in_prefect  # noqa: PLC0415

            with prefect_at(url, settings):
                references = run_demo(settings)
            if not wait_until_in_prefect(settings, references):
                typer.echo("demo referrals not in Prefect yet: the sweeper goes on", err=True)
            typer.echo(f"demo referrals: {', '.join(references)}")
        if demo and web is not None:
            from flows.demo import demo_access  # noqa: PLC0415

            typer.echo(
                "\ntry the web inbox (demo only: these open the cases to whoever holds them)"
            )
            for what, value in demo_access(settings).items():
                typer.echo(f"  {what:<18} {value}")
        _tell_where(settings, url, mailbox, web, status)

        while not stop.wait(1.0):
            for process, name in [*children, (runner, "flow runner")]:
                if process.poll() is not None:
                    typer.echo(
                        f"{name} exited with status {process.returncode}; stopping (see {logs})",
                        err=True,
                    )
                    stop.set()
    finally:
        stop.set()
        typer.echo("stopping…")
        if commands is not None:  # commands run on their own from here on
            commands.close()
        if web is not None:
            web.should_exit = True
        if sweeper is not None:
            sweeper.join(timeout=30)  # a sweep under way finishes its flow run
        if runner is not None:
            runner.stop()  # while the server is up: it cancels the flow runs under way
        deliver_logs()  # the sweeps' last log lines, while the server is up to take them
        for process, name in reversed(children):
            _stop_process(process, name)
        if mailbox is not None:
            mailbox.stop()
        marker.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        typer.echo("stopped")


def serve_parts(settings: Settings, parts: frozenset[str]) -> None:
    """Run only `parts` of Rujukan on this host, until Ctrl-C or SIGTERM (a process manager).

    Nothing is migrated or created here: `rujukan init` does that once for all hosts. A part
    that talks to Prefect without running its API finds it at PREFECT_API_URL.
    """
    from flows.server import (
        check_bind_address,
        is_healthy,
        limit_malloc_arenas,
        own_api_url,
        prefect_at,
        server_environment,
        serving_file,
        start_server,
        start_services,
        wait_until_healthy,
    )
    from models.database import schema_is_current
    from models.errors import BadInput
    from models.settings import make_private_dir, open_private

    limit_malloc_arenas()  # before any thread starts
    secure_home(settings)
    settings.resolved_secret_key()  # every host needs the key: SealError says how to give it
    if parts - {"api", "services"} and not schema_is_current(settings.resolved_database_url):
        raise BadInput(
            "the case database is not at this version's schema: run `rujukan init` once (it "
            "migrates), then start the parts"
        )
    url = own_api_url(settings) if "api" in parts else os.environ.get("PREFECT_API_URL", "")
    if "api" in parts:
        check_bind_address(settings)
        if is_healthy(url, settings):
            raise BadInput(f"something already answers at {url}: set RUJUKAN_PREFECT_PORT")
    elif not url and parts - {"services"}:
        raise BadInput(
            "PREFECT_API_URL is not set: give the address of the Prefect API these parts use, "
            "e.g. PREFECT_API_URL=http://10.0.0.5:4200/api"
        )
    logs = make_private_dir(settings.home / "logs")
    stop = threading.Event()

    def _on_signal(_signum, _frame) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[tuple[subprocess.Popen, str]] = []
    threads: list[tuple[threading.Thread, str]] = []
    web = None
    failed = False
    try:
        if "api" in parts:
            server = start_server(
                settings, logs / "prefect-server.log", services="services" in parts, api=url
            )
            children.append((server, "Prefect API"))
            wait_until_healthy(url, settings, server)
            with open_private(serving_file(settings), "w") as handle:
                handle.write(json.dumps({"api_url": url, "pid": os.getpid()}))
        elif "services" in parts:
            services = start_services(settings, logs / "prefect-services.log", api=url or None)
            children.append((services, "Prefect services"))
        if "api" not in parts and "worker" in parts:  # the inbox and relay work without it
            wait_until_healthy(url, settings)
        if "worker" in parts:
            runner = _start_runner(server_environment(settings, api=url), logs)
            children.append((runner, "flow runner"))
            from flows.deployments import wait_until_served  # noqa: PLC0415

            with prefect_at(url, settings):
                wait_until_served(runner)
            prepare_prefect(settings, automations=False)
        if "relay" in parts:
            from notifications.relay import run_relay  # noqa: PLC0415

            relay = threading.Thread(target=run_relay, args=(settings, stop), name="relay")
            relay.start()
            threads.append((relay, "relay"))
        if "inbox" in parts:
            web = _start_web(settings)
            threads.append((web.thread, "web inbox"))
        typer.echo(
            f"running {', '.join(p for p in PARTS if p in parts)} (Prefect API {url}; logs in "
            f"{logs}); Ctrl-C stops them."
        )
        while not stop.wait(1.0):
            for process, name in children:
                if process.poll() is not None:
                    typer.echo(f"{name} exited with status {process.returncode}", err=True)
                    failed = True
            for thread, name in threads:
                if not thread.is_alive():
                    typer.echo(f"{name} stopped", err=True)
                    failed = True
            if failed:
                break
    finally:
        stop.set()
        if web is not None:
            web.should_exit = True
        for process, name in reversed(children):
            _stop_process(process, name)
        for thread, _name in threads:
            thread.join(timeout=20)
        if "api" in parts:
            serving_file(settings).unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:  # a process manager restarts the whole unit
        raise typer.Exit(1)


def _tell_where(settings: Settings, url: str, mailbox, web, status: dict) -> None:
    ui = url.removesuffix("/api")
    lines = [
        "",
        f"Prefect UI     {ui}",
        f"  overdue      {ui}/artifacts/key/overdue-steps  (bookmark it), runs tagged 'overdue'",
        f"  referrals    {ui}/runs?tag=referral  (search a reference code; tags agency:…)",
    ]
    if web is not None:
        lines.append(f"web inbox      http://{settings.web_host}:{settings.web_port}")
    if mailbox is not None:
        lines.append(f"demo mailbox   {Path(mailbox.folder).resolve()}")
    lines.append(
        f"sweep          every {settings.sweep_interval_seconds} s; automations: "
        f"{', '.join(status.get('automations_created') or []) or 'in place'}"
    )
    lines.append("Ctrl-C stops everything.")
    typer.echo("\n".join(lines))
