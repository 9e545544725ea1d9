"""`rujukan serve --demo` end to end: a real Prefect server, the served deployments, a browser.

One server for the module (starting one takes ~15 s on two cores): the demo referrals go
overdue, the UI shows them, a Resume runs the referral flow in the runner, a canary referral
leaves no personal data in Prefect, and a restart carries on without doubling anything.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.common import processes_of
from models.settings import PROJECT_ROOT
from tests.network import free_port
from tests.polling import wait_for
from tests.security.test_file_modes import loose_modes

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "test-output" / "flows"

CANARY_NAME = "Kanari Wqzxv Tesnama"
CANARY_PHONE = "+62 899 4242 4243"
CANARY_YEAR = 1931
CANARY_DISTRICT = "Kanaridistrikzq"


@dataclass
class Served:
    """A running `rujukan serve` and how to reach it."""

    home: Path
    env: dict[str, str]
    ui: str
    process: subprocess.Popen | None = None
    out: Path | None = None

    @property
    def api(self) -> str:
        return f"{self.ui}/api"

    def start(self, *args: str) -> None:
        """Start `rujukan serve` and wait until it says where to look."""
        self.out = self.home / f"serve-{int(time.time() * 1000)}.out"
        self.process = subprocess.Popen(
            [RUJUKAN, "serve", *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=self.out.open("wb"),
            stderr=subprocess.STDOUT,
            umask=0o022,  # as most shells have it: serve must keep its home owner-only anyway
        )
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            text = self.out.read_text(errors="replace")
            if "Ctrl-C stops everything" in text:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{text}")
            time.sleep(0.5)
        raise AssertionError(f"serve did not come up:\n{self.out.read_text()}")

    def stop(self) -> int:
        """Ctrl-C, as a person would; return the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run another rujukan command against the same home (it finds the served Prefect)."""
        result = subprocess.run(
            [RUJUKAN, *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "EventsWorker" not in result.stderr, result.stderr  # no noise after a write
        return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """`rujukan serve --demo` on free ports with a temporary home; stopped at the end."""
    home = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    env.update(
        RUJUKAN_HOME=str(home / "var"),
        RUJUKAN_SECRET_KEY="served-test-key",
        RUJUKAN_PREFECT_PORT=str(port),
        RUJUKAN_WEB_PORT=str(free_port()),
        RUJUKAN_MAILBOX_PORT=str(free_port()),
        RUJUKAN_SWEEP_INTERVAL_SECONDS="10",
    )
    server = Served(home=home, env=env, ui=f"http://127.0.0.1:{port}")
    server.start("--demo")
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


def client_for(served: Served):
    """A synchronous Prefect client of the served API."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    class _Ctx:
        def __enter__(self):
            self._settings = temporary_settings(updates={PREFECT_API_URL: served.api})
            self._settings.__enter__()
            self._client = get_client(sync_client=True)
            return self._client.__enter__()

        def __exit__(self, *exc):
            self._client.__exit__(*exc)
            self._settings.__exit__(*exc)

    return _Ctx()


def demo_references(served: Served) -> list[str]:
    """References of the demo referrals, from the case database."""
    db = sqlite3.connect(served.home / "var" / "rujukan.db")
    try:
        return [r for (r,) in db.execute("select reference from referral where batch='demo-1'")]
    finally:
        db.close()


def referral_runs(client) -> list:
    """Every run of the referral flow."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    return client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["referral"])), limit=200
    )


def test_demo_referrals_are_runs_and_go_overdue_within_about_a_minute(served: Served):
    started = time.monotonic()
    references = demo_references(served)
    assert len(references) == 4
    with client_for(served) as client:
        runs = {r.name: r for r in referral_runs(client)}
        assert set(references) <= set(runs)
        for ref in references:  # suspended (PAUSED), named by what matters, never late
            state = runs[ref].state
            assert state.type.value == "PAUSED" and state.state_details.pause_reschedule
            assert state.name in ("Suspended", "Overdue", "Escalated")
            assert runs[ref].start_time == runs[ref].expected_start_time
        assert all(any(t.startswith("pathway:") for t in runs[ref].tags) for ref in references)

        def overdue_runs():
            return [r.name for r in referral_runs(client) if "overdue" in r.tags]

        def overdue_shown():
            names = overdue_runs()
            latest = {a.key: a.data for a in client.read_latest_artifacts()}
            return names and names[0] in str(latest.get("overdue-steps")) and (names, latest)

        overdue, latest = wait_for("a run tagged overdue, in overdue-steps", overdue_shown)
        assert "overdue-steps" in latest and overdue[0] in str(latest["overdue-steps"])
        # One card for every overdue step; each referral's table is in its own run.
        assert not [k for k in latest if k.startswith(("overdue-", "referral-"))
                    and k != "overdue-steps"]  # fmt: skip
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        (table,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[runs[references[2]].id])
            ),
            limit=1,
        )
        assert table.key is None and "| identifikasi | polres-ppa | completed |" in table.data
        automations = client.read_automations_by_name("rujukan: step escalated to the task force")
        assert len(automations) == 1
        assert [a.type for a in automations[0].actions] == ["change-flow-run-state"]

        def sweep_runs():
            from prefect.client.schemas.filters import FlowFilter, FlowFilterName

            return client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["deadline-sweep"])), limit=200
            )

        def two_sweeps():
            done = [r for r in sweep_runs() if r.state.type.value == "COMPLETED"]
            return len(done) >= 2 and done

        done = wait_for("two completed sweep runs", two_sweeps, timeout=90)
        # serve sweeps in its own process: each sweep a run named by its time and tagged, and
        # none made ahead by Prefect's scheduler (the deployment is served unscheduled).
        assert all(re.fullmatch(r"sweep-\d{4}-\d\d-\d\dT\d\d:\d\dZ", r.name) for r in done)
        assert all("sweep" in r.tags for r in done)
        assert not [r.name for r in sweep_runs() if r.state.type.value == "SCHEDULED"]
    print(f"\noverdue visible {time.monotonic() - started:.0f} s after serve was up")


@pytest.mark.browser
def test_serve_keeps_its_home_owner_only_under_a_loose_umask(served: Served):
    """Started under umask 022: Prefect's database, the case database and its WAL while serve
    holds it, the logs and the mailbox's real email are all 0600, every folder 0700."""
    home = served.home / "var"
    wait_for("the demo's first email", lambda: list((home / "mailbox").glob("*.eml")), timeout=60)
    written = {p.relative_to(home).as_posix() for p in home.rglob("*")}
    assert {"rujukan.db-wal", "prefect/prefect.db", "logs/prefect-runner.log"} <= written
    assert loose_modes(home) == []


def test_a_manager_finds_overdue_steps_in_the_prefect_ui(served: Served):
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with client_for(served) as client:
        overdue = wait_for(
            "a run tagged overdue",
            lambda: [r.name for r in referral_runs(client) if "overdue" in r.tags],
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{served.ui}/artifacts", wait_until="networkidle")
            page.get_by_text("overdue-steps", exact=True).first.wait_for(timeout=30000)
            page.screenshot(path=str(SCREENSHOTS / "artifacts.png"), full_page=True)
            page.get_by_text("overdue-steps", exact=True).first.click()
            page.wait_for_url(re.compile(r"/artifacts/key/overdue-steps"), timeout=30000)
            page.screenshot(path=str(SCREENSHOTS / "overdue-steps-versions.png"), full_page=True)
            # The key's page lists its versions, newest first; the newest holds the table.
            page.locator("a[href^='/artifacts/artifact/']").first.click()
            page.wait_for_url(re.compile(r"/artifacts/artifact/"), timeout=30000)
            page.get_by_text(overdue[0], exact=True).first.wait_for(timeout=30000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / "overdue-steps.png"), full_page=True)

            # The one address a manager bookmarks shows the table itself, no click needed.
            page.goto(f"{served.ui}/artifacts/key/overdue-steps", wait_until="networkidle")
            page.get_by_text(overdue[0]).first.wait_for(timeout=30000)
            assert "open step" in page.inner_text("body") and "past due" in page.inner_text("body")
            page.screenshot(path=str(SCREENSHOTS / "overdue-steps-bookmark.png"), full_page=True)

            # Referral runs only (tag `referral`): none reads "late", escalated ones say so.
            page.goto(f"{served.ui}/runs?tag=referral", wait_until="networkidle")
            page.get_by_text(overdue[0], exact=True).first.wait_for(timeout=30000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / "runs-referrals.png"), full_page=True)
            body = page.inner_text("body")
            assert " late)" not in body  # Prefect's "(3m 25s late)" of a run without a start
            assert "Escalated" in body or "Overdue" in body
            assert "sweep-" not in body  # sweep runs are not in the referrals' list

            # One overdue referral's own page: its state, no lateness, its table in its run.
            with client_for(served) as client:
                run = next(r for r in referral_runs(client) if r.name == overdue[0])
            page.goto(f"{served.ui}/runs/flow-run/{run.id}", wait_until="networkidle")
            page.get_by_text(overdue[0]).first.wait_for(timeout=30000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / "referral-run.png"), full_page=True)
            body = page.inner_text("body")
            assert " late" not in body and ("Escalated" in body or "Overdue" in body)

            # The shipped automation's action is shown and says what it does.
            page.goto(f"{served.ui}/automations", wait_until="networkidle")
            page.get_by_text("rujukan: step escalated to the task force").first.wait_for(
                timeout=30000
            )
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / "automation.png"), full_page=True)
            action = page.inner_text("body").split("Action", 1)[-1]
            assert "Change the state of the flow run" in action and "Escalated" in action

            page.goto(f"{served.ui}/dashboard", wait_until="networkidle")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

            # The Runs page, filtered by the tag `overdue` the way a manager does it.
            page.goto(f"{served.ui}/runs", wait_until="networkidle")
            page.get_by_text("All tags").click()
            page.keyboard.type("overdue")
            page.locator("[role=option]", has_text="overdue").first.click()
            page.keyboard.press("Escape")
            page.mouse.click(700, 40)  # close the tag list: a click on the empty page header
            page.wait_for_url(re.compile(r"tag=overdue"), timeout=30000)
            page.get_by_text(overdue[0], exact=True).first.wait_for(timeout=30000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / "runs-tagged-overdue.png"), full_page=True)
            body = page.inner_text("body")
            # Runs without the tag are filtered out: the child referral is not late yet.
            on_time = demo_references(served)[3]
            assert on_time not in body
        finally:
            browser.close()
    print(f"\nscreenshots in {SCREENSHOTS}")


def test_resume_runs_the_referral_flow_in_the_served_deployment(served: Served):
    from prefect.flow_runs import resume_flow_run

    reference = demo_references(served)[3]
    with client_for(served) as client:
        run = next(r for r in referral_runs(client) if r.name == reference)
        started = time.monotonic()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: served.api}):
            resume_flow_run(run.id)

        def ran_and_suspended():
            states = [s.name for s in client.read_flow_run_states(run.id)]
            return "Running" in states and states[-1] == "Suspended" and states

        states = wait_for("the resumed run to suspend again", ran_and_suspended, timeout=120)
        print(f"\nresume -> running -> suspended in {time.monotonic() - started:.0f} s: {states}")
        assert client.read_flow_run(run.id).name == reference


def _canary_intake(path: Path) -> Path:
    data = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
    data["person"].update(
        name=CANARY_NAME,
        phone=CANARY_PHONE,
        birth_year=CANARY_YEAR,
        home_district=CANARY_DISTRICT,
        address="Jalan Kanarizq 77",
    )
    path.write_text(json.dumps(data))
    return path


def _prefect_text(served: Served) -> str:
    """Every row of every table of Prefect's database, and every log file, as one text."""
    parts = []
    db = sqlite3.connect(served.home / "var" / "prefect" / "prefect.db")
    try:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):
                parts.append(f"{table}: {row!r}")
    finally:
        db.close()
    for log in (served.home / "var" / "logs").glob("*.log"):
        parts.append(log.read_text(errors="replace"))
    assert served.out is not None
    parts.append(served.out.read_text(errors="replace"))
    return "\n".join(parts)


def test_no_personal_data_reaches_prefect(served: Served):
    intake = _canary_intake(served.home / "canary.json")
    launched = served.cli("launch", "--intake", str(intake), "--json")
    reference = json.loads(launched.stdout)["reference"]
    served.cli("step", "accept", reference, "identifikasi", "--agency", "polres-ppa", "--by", "ani")
    served.cli(
        "step",
        "complete",
        reference,
        "identifikasi",
        "--agency",
        "polres-ppa",
        "--outcome",
        "served",
        "--by",
        "ani",
    )
    other = json.loads(served.cli("launch", "--intake", str(intake), "--json").stdout)["reference"]
    served.cli("referral", "cancel", other, "--reason", "victim-moved", "--by", "coordinator-1")
    served.cli("sweep")
    with client_for(served) as client:
        runs = {r.name: r for r in referral_runs(client)}
        assert reference in runs and other in runs  # the CLI woke Prefect through the served API
        assert runs[other].state.type.value == "CANCELLED"
        from prefect.flow_runs import resume_flow_run
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: served.api}):
            resume_flow_run(runs[reference].id)  # the referral flow runs, and logs, in the runner
        wait_for(
            "the canary run to run and suspend",
            lambda: (lambda s: "Running" in s and s[-1] == "Suspended")(
                [x.name for x in client.read_flow_run_states(runs[reference].id)]
            ),
            timeout=120,
        )

    text = _prefect_text(served)
    assert reference in text  # the dump does hold the referral, by its code
    digits = re.sub(r"\D", "", CANARY_PHONE)
    for canary in (
        CANARY_NAME,
        *CANARY_NAME.split(),
        CANARY_PHONE,
        digits,
        digits[2:],
        CANARY_DISTRICT,
        "Kanarizq",
    ):
        assert canary.lower() not in text.lower(), f"'{canary}' reached Prefect"
    # A year is only a leak as a number of its own, not inside an id or a timestamp.
    assert not re.search(rf"(?<![0-9A-Fa-f:.-]){CANARY_YEAR}(?![0-9A-Fa-f:.-])", text)
    assert "birth_year" not in text


def test_a_second_shell_without_the_variables_agrees_with_serve(served: Served):
    """serve recorded its settings in the home: a command given only RUJUKAN_HOME links to the
    inbox serve runs (not to the default port) and finds serve's Prefect."""
    recorded = (served.home / "var" / "settings.env").read_text()
    assert f'RUJUKAN_WEB_PORT="{served.env["RUJUKAN_WEB_PORT"]}"' in recorded
    bare = {k: v for k, v in served.env.items() if not k.startswith("RUJUKAN_")}
    bare.update(RUJUKAN_HOME=served.env["RUJUKAN_HOME"], RUJUKAN_SECRET_KEY="served-test-key")
    linked = subprocess.run(
        [RUJUKAN, "access", "link", "--agency", "dinsos", "--json"],
        env=bare,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert linked.returncode == 0, linked.stderr
    url = json.loads(linked.stdout)["url"]
    assert url.startswith(f"http://127.0.0.1:{served.env['RUJUKAN_WEB_PORT']}/s/")
    assert httpx.get(url, timeout=10, follow_redirects=False).status_code < 400  # serve's inbox


def _demo_coordinator_grants(served: Served) -> list[tuple[int, bool]]:
    db = sqlite3.connect(served.home / "var" / "rujukan.db")
    try:
        return list(
            db.execute(
                "select id, revoked_at is null from access_grant "
                "where holder='demo-coordinator' order by id"
            )
        )
    finally:
        db.close()


def test_a_restart_carries_on_without_doubling_anything(served: Served):
    with client_for(served) as client:
        before = sorted(r.name for r in referral_runs(client))
    assert served.stop() == 0
    assert not (served.home / "var" / "prefect" / "serving.json").exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{served.api}/health", timeout=2)

    # While it is down, an agency acts; the CLI does not wait for Prefect.
    reference = demo_references(served)[0]
    started = time.monotonic()
    served.cli("step", "accept", reference, "identifikasi", "--agency", "polres-ppa", "--by", "ani")
    print(f"\naccepted while Prefect was down in {time.monotonic() - started:.1f} s")

    assert [active for _, active in _demo_coordinator_grants(served)] == [True]
    served.start("--demo")
    assert len(demo_references(served)) == 4  # the demo is not launched twice
    # One demo coordinator token works at a time: the first start's is revoked, not piled up.
    assert [active for _, active in _demo_coordinator_grants(served)] == [False, True]
    with client_for(served) as client:
        after = sorted(r.name for r in referral_runs(client))
        assert after == before  # no referral lost, none started twice
        run = next(r for r in referral_runs(client) if r.name == reference)
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        def history():
            return [
                t.name
                for t in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
                )
            ]

        # Caught up behind the ready line, by serve's sweeper.
        wait_for(
            "the accept made while serve was down, in the run's history",
            lambda: "accepted identifikasi · polres-ppa" in history(),
            timeout=30,
        )
    assert uuid.UUID(str(run.id))


def _processes_of(home: Path) -> list[str]:
    """The command lines of every live process with this home in its environment."""
    found = []
    for pid in processes_of(home):
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone already
    return found


def test_stopping_serve_during_a_resumed_run_leaves_no_process_behind(served: Served):
    """The runner is a thread of serve, and the flow runs it starts are serve's own children:
    stopped while one runs, serve cancels it and nothing of the home outlives serve."""
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = served.home / "var"
    # The on-time referral: a late one's run may hold the escalation automation's state, which
    # a Resume turns Running in place (no reschedule flag), so no process would start.
    reference = demo_references(served)[3]
    with client_for(served) as client:
        run = next(r for r in referral_runs(client) if r.name == reference)
        wait_for(
            "the run suspended by Rujukan, resumable",
            lambda: client.read_flow_run(run.id).state.state_details.pause_reschedule,
            timeout=60,
        )
        with temporary_settings(updates={PREFECT_API_URL: served.api}):
            resume_flow_run(run.id)
    wait_for(
        "the resumed run's process",
        lambda: [c for c in _processes_of(home) if "prefect.engine" in c],
        timeout=60,
        every=0.2,
    )
    assert served.stop() == 0
    time.sleep(1)
    assert _processes_of(home) == []
