"""Flows against the session's Prefect test server: referral runs, sweep, batches, automations."""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from flows.referral import sync_referrals
from flows.server import check_bind_address, reachable_api, server_environment
from flows.wake import after_commit
from models.actions import Actor, accept_step, decide_extension, launch, load_step
from models.catalog import load_catalog
from models.database import engine_for, transaction
from models.errors import BadInput
from models.intake import Intake
from models.outbox import OutboxMessage
from models.referral import Referral
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings, get_settings

pytestmark = pytest.mark.prefect

FAST_PATHWAY = """
id: uji-detik
version: 1
title: {id: Uji detik, en: Seconds test}
steps:
  - key: identifikasi
    title: {id: Identifikasi, en: Identification}
    agency: polres-ppa
    deadline: PT5S
    basis: "test clock"
    remind_before: PT2S
    escalate_after: PT5S
  - key: kesehatan
    title: {id: Kesehatan, en: Health}
    agency: dinkes
    deadline: PT5S
    basis: "test clock"
    depends_on: [identifikasi]
"""


def intake(pathway: str = "tppo-dewasa", **person) -> Intake:
    """An intake with consent for every agency of the sample directory."""
    data = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
    data["pathway"] = pathway
    data["person"].update(person)
    data["consent"]["agencies"] = [
        "imigrasi",
        "polres-ppa",
        "uptd-ppa",
        "dinsos",
        "dinkes",
        "psikolog",
        "lbh",
        "lpsk",
        "bp3mi",
        "disnaker",
        "iom",
        "ngo",
    ]
    return Intake.model_validate(data)


def launch_one(
    settings: Settings, pathway: str = "tppo-dewasa", now: datetime | None = None
) -> Referral:
    """Launch one referral in its own transaction."""
    catalog = load_catalog(settings)
    with transaction(engine_for(settings.resolved_database_url)) as session:
        return launch(
            session,
            intake=intake(pathway),
            catalog=catalog,
            sealer=Sealer("k"),
            now=now or datetime.now(UTC),
        )


def run_of(client, referral: Referral):
    """The Prefect flow run recorded for a referral."""
    with Session(engine_for(get_settings().resolved_database_url)) as session:
        stored = session.get(Referral, referral.id)
    assert stored is not None and stored.flow_run_id, "the referral has no flow run"
    import uuid

    return client.read_flow_run(uuid.UUID(stored.flow_run_id))


def task_run_names(client, run_id) -> list[str]:
    """Names of the task runs of a flow run."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return sorted(t.name for t in runs)


def run_tables(client, run_id) -> list:
    """The referral tables (markdown, no key) of one run, newest first."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    return client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])),
        sort=ArtifactSort.CREATED_DESC,
    )


def artifact_versions(client, key: str) -> list:
    """Every version of an artifact key, newest first."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    return client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        sort=ArtifactSort.CREATED_DESC,
    )


@pytest.fixture
def fast_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_db: Settings) -> Settings:
    """Settings whose pathways include `uji-detik`, a pathway with five-second deadlines."""
    folder = tmp_path / "pathways"
    shutil.copytree(PROJECT_ROOT / "pathways", folder)
    (folder / "uji-detik.yaml").write_text(FAST_PATHWAY)
    monkeypatch.setenv("RUJUKAN_PATHWAYS_DIR", str(folder))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def with_prefect(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PREFECT_API_URL set for this test, as an operator sets it."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    return prefect_api


# --- without Prefect ----------------------------------------------------------------------------


def test_serve_waits_for_exactly_the_deployments_it_builds(settings):
    from flows.deployments import DEPLOYMENT_NAMES, build_deployments

    assert [d.name for d in build_deployments(settings)] == list(DEPLOYMENT_NAMES)


def test_wake_without_prefect_is_a_quick_no_op(case_db: Settings, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    referral = launch_one(case_db)
    started = time.perf_counter()
    after_commit(case_db, [referral.id])
    after_commit(case_db, [referral.id])
    print(f"\nwake-up without Prefect: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert reachable_api(case_db) is None
    with Session(engine_for(case_db.resolved_database_url)) as session:
        assert session.get(Referral, referral.id).flow_run_id is None


def test_a_configured_but_dead_prefect_is_skipped(case_db: Settings, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    referral = launch_one(case_db)
    started = time.perf_counter()
    after_commit(case_db, [referral.id])  # no error: the sweep's catch-up repairs it later
    print(f"\nwake-up with a dead Prefect: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert reachable_api(case_db) is None
    with Session(engine_for(case_db.resolved_database_url)) as session:
        assert session.get(Referral, referral.id).flow_run_id is None


def test_prefect_is_not_exposed_beyond_loopback_without_a_password(settings, monkeypatch):
    monkeypatch.setenv("RUJUKAN_PREFECT_HOST", "0.0.0.0")
    get_settings.cache_clear()
    with pytest.raises(BadInput, match="AUTH_STRING"):
        check_bind_address(get_settings())
    monkeypatch.setenv("RUJUKAN_PREFECT_API_AUTH_STRING", "admin:s3cret")
    get_settings.cache_clear()
    exposed = get_settings()
    check_bind_address(exposed)
    env = server_environment(exposed)
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:s3cret"
    assert env["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    assert env["PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS"] != "*"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"
    assert env["PREFECT_UI_API_URL"] == env["PREFECT_API_URL"]


def test_serve_hands_its_children_absolute_paths(tmp_path, monkeypatch):
    """The runner works in the project folder: a relative RUJUKAN_HOME must not open another db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUJUKAN_HOME", "var2")
    monkeypatch.delenv("RUJUKAN_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    here = get_settings()
    env = server_environment(here)
    assert env["RUJUKAN_HOME"] == str(tmp_path / "var2")
    monkeypatch.chdir(PROJECT_ROOT)  # where the runner and its flow runs start
    for name in (
        "RUJUKAN_HOME",
        "RUJUKAN_DATABASE_URL",
        "RUJUKAN_PATHWAYS_DIR",
        "RUJUKAN_AGENCIES_FILE",
        "RUJUKAN_APPRISE_CONFIG",
    ):
        monkeypatch.setenv(name, env[name])
    get_settings.cache_clear()
    there = get_settings()
    assert there.resolved_database_url == here.resolved_database_url
    assert there.resolved_database_url == f"sqlite:///{tmp_path / 'var2' / 'rujukan.db'}"
    assert there.resolved_apprise_config == tmp_path / "var2" / "channels.yaml"

    monkeypatch.chdir(tmp_path)  # a relative SQLite URL given by hand is made absolute too
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", "sqlite:///cases/rujukan.db")
    get_settings.cache_clear()
    env = server_environment(get_settings())
    assert env["RUJUKAN_DATABASE_URL"] == f"sqlite:///{tmp_path / 'cases' / 'rujukan.db'}"
    get_settings.cache_clear()


def test_a_restarted_demo_withdraws_its_earlier_coordinator_token(case_db: Settings):
    """Each `serve --demo` prints a fresh coordinator token; the one before stops working."""
    from flows.demo import demo_access
    from models.access import AccessGrant, principal_of_token
    from models.audit import AuditEntry
    from models.errors import Forbidden

    first = demo_access(case_db)["coordinator token"]
    second = demo_access(case_db)["coordinator token"]
    engine = engine_for(case_db.resolved_database_url)
    with Session(engine) as session:
        grants = session.exec(select(AccessGrant).where(AccessGrant.kind == "coordinator")).all()
        assert [g.revoked_at is None for g in grants] == [False, True]
        assert principal_of_token(session, second, datetime.now(UTC)).holder == "demo-coordinator"
        with pytest.raises(Forbidden, match="revoked"):
            principal_of_token(session, first, datetime.now(UTC))
        revoked = session.exec(
            select(AuditEntry).where(AuditEntry.action == "access-revoked")
        ).all()
        assert [(e.actor, e.detail["grant"]) for e in revoked] == [("serve --demo", grants[0].id)]


def test_rujukan_sweep_works_without_prefect(case_db: Settings, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    launch_one(case_db, now=datetime.now(UTC) - timedelta(days=3))
    result = CliRunner().invoke(app, ["sweep", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["overdue"] == 1 and summary["escalated"] == 1
    assert summary["prefect"].startswith("not reachable")


# --- with the Prefect test server ---------------------------------------------------------------


def test_a_referral_is_one_run_named_tagged_with_history_and_artifact(
    case_db, with_prefect, prefect_client
):
    referral = launch_one(case_db)
    after_commit(case_db, [referral.id])
    run = run_of(prefect_client, referral)
    assert run.name == referral.reference
    assert run.parameters == {"reference": referral.reference}
    assert run.state.name == "Suspended"
    assert sorted(run.tags) == ["agency:polres-ppa", "pathway:tppo-dewasa", "referral"]
    names = task_run_names(prefect_client, run.id)
    assert "launched" in names and "ready identifikasi · polres-ppa" in names
    tables = run_tables(prefect_client, run.id)
    assert [t.key for t in tables] == [None]  # the run's own, not a card on the Artifacts page
    table = tables[0].data
    assert "| identifikasi | polres-ppa | ready |" in table and "WIB" in table

    # An agency acts: tags follow, history grows, the same run is kept.
    police = Actor("agency", "ani", "polres-ppa")
    with transaction(engine_for(case_db.resolved_database_url)) as session:
        accept_step(
            session=session,
            step=load_step(
                session=session,
                reference=referral.reference,
                step_ref="identifikasi",
                agency="polres-ppa",
            ),
            actor=police,
            now=datetime.now(UTC),
        )
    after_commit(case_db, [referral.id])
    again = run_of(prefect_client, referral)
    assert again.id == run.id
    assert "accepted identifikasi · polres-ppa" in task_run_names(prefect_client, run.id)

    # Repeating the wake changes nothing: no new task runs, no new artifact version.
    count = len(task_run_names(prefect_client, run.id))
    versions = len(run_tables(prefect_client, run.id))
    after_commit(case_db, [referral.id])
    assert len(task_run_names(prefect_client, run.id)) == count
    assert len(run_tables(prefect_client, run.id)) == versions


def test_deadline_sweep_sends_each_notice_once_and_shows_overdue(
    fast_settings, with_prefect, prefect_client
):
    """A PT5S pathway through reminder, overdue and escalation, with explicit sweep times."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from flows.sweep import deadline_sweep_at

    t0 = datetime.now(UTC)
    referral = launch_one(fast_settings, "uji-detik", now=t0)
    after_commit(fast_settings, [referral.id])
    seconds = [1, 3, 3, 4, 5, 6, 9, 10, 10, 15, 30]
    totals: dict[str, int] = {}
    for s in seconds:
        summary = deadline_sweep_at(t0 + timedelta(seconds=s))
        for kind in ("reminder", "overdue", "escalated"):
            totals[kind] = totals.get(kind, 0) + summary.get(kind, 0)
    assert totals == {"reminder": 1, "overdue": 1, "escalated": 1}
    with Session(engine_for(fast_settings.resolved_database_url)) as session:
        events = sorted(
            m.event.value
            for m in session.exec(
                select(OutboxMessage).where(OutboxMessage.referral_id == referral.id)
            )
        )
    assert events == ["assigned", "escalated", "overdue", "reminder"]

    run = run_of(prefect_client, referral)
    assert {"overdue", "escalated", "agency:polres-ppa", "pathway:uji-detik"} <= set(run.tags)
    rows = artifact_versions(prefect_client, "overdue-steps")[0].data
    assert referral.reference in str(rows)
    assert artifact_versions(prefect_client, "overdue-polres-ppa") == []  # one table, one key
    assert "overdue identifikasi · polres-ppa" in task_run_names(prefect_client, run.id)

    deadline = time.monotonic() + 60
    names: list[str] = []
    while time.monotonic() < deadline:
        page = prefect_client.read_events(
            filter=EventFilter(
                event=EventNameFilter(prefix=["rujukan.step."]),
                resource=EventResourceFilter(id=[referral.reference]),
            ),
            limit=50,
        )
        names = sorted(e.event for e in page.events)
        if len(names) >= 2:
            break
        time.sleep(1)
    assert names == ["rujukan.step.escalated", "rujukan.step.overdue"]
    event = next(e for e in page.events if e.event == "rujukan.step.overdue")
    assert event.resource["agency"] == "polres-ppa" and event.resource["step"] == "identifikasi"
    assert event.resource["pathway"] == "uji-detik"

    # An extension moves the deadline and re-arms the notices, each once again.
    with transaction(engine_for(fast_settings.resolved_database_url)) as session:
        decide_extension(
            session=session,
            step=load_step(session=session, reference=referral.reference, step_ref="identifikasi"),
            approve=True,
            until=t0 + timedelta(seconds=60),
            actor=Actor("coordinator", "c-1"),
            now=t0 + timedelta(seconds=31),
        )
    after_commit(fast_settings, [referral.id])
    assert "overdue" not in run_of(prefect_client, referral).tags
    again: dict[str, int] = {}
    for s in [40, 58, 58, 60, 61, 65, 70]:
        summary = deadline_sweep_at(t0 + timedelta(seconds=s))
        for kind in ("reminder", "overdue", "escalated"):
            again[kind] = again.get(kind, 0) + summary.get(kind, 0)
    assert again == {"reminder": 1, "overdue": 1, "escalated": 1}


def test_two_sweeps_at_once_never_send_a_notice_twice(fast_settings, monkeypatch):
    from flows.sweep import sweep_and_relay

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    t0 = datetime.now(UTC)
    for _ in range(5):
        launch_one(fast_settings, "uji-detik", now=t0)
    results = []

    def one() -> None:
        results.append(sweep_and_relay(fast_settings, t0 + timedelta(seconds=20)))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted: dict[str, int] = {}
    for r in results:
        for kind, n in r.counts().items():
            counted[kind] = counted.get(kind, 0) + n
    assert counted == {"overdue": 5, "escalated": 5}


def test_an_action_while_prefect_was_down_is_caught_up_by_the_sweep(
    case_db, prefect_api, prefect_client, monkeypatch
):
    from flows.sweep import deadline_sweep

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    referral = launch_one(case_db)
    after_commit(case_db, [referral.id])  # Prefect "down": nothing happens
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    deadline_sweep()
    run = run_of(prefect_client, referral)
    assert run.name == referral.reference and "agency:polres-ppa" in run.tags


def test_a_lost_prefect_database_is_rebuilt_from_the_case_database(
    case_db, with_prefect, prefect_client
):
    referral = launch_one(case_db)
    after_commit(case_db, [referral.id])
    first = run_of(prefect_client, referral)
    prefect_client.delete_flow_run(first.id)  # as if Prefect's database had been replaced
    after_commit(case_db, [referral.id])
    rebuilt = run_of(prefect_client, referral)
    assert rebuilt.id != first.id and rebuilt.name == referral.reference
    assert "launched" in task_run_names(prefect_client, rebuilt.id)


def test_a_batch_is_one_transaction_and_never_one_process_per_referral(
    case_db, with_prefect, prefect_client, tmp_path
):
    """`rujukan launch --batch`: one transaction, then the runs through the API, no flow run."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from typer.testing import CliRunner

    from cli.main import app

    lines = [intake(name=f"Orang Palsu {n}").model_dump_json() for n in range(20)]
    batch_file = tmp_path / "rescue.jsonl"
    batch_file.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["launch", "--batch", str(batch_file), "--json"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    references = [json.loads(line)["reference"] for line in result.stdout.splitlines()]
    print(f"\nbatch of 20: {elapsed:.1f} s, {elapsed / 20 * 1000:.0f} ms a referral")
    assert len(set(references)) == 20
    runs = prefect_client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["referral"])), limit=200
    )
    assert set(references) <= {r.name for r in runs}
    ours = [r for r in runs if r.name in references]
    assert all(r.state.name == "Suspended" and r.infrastructure_pid is None for r in ours)


def test_the_escalation_automation_is_created_once(case_db, with_prefect, prefect_client):
    from flows.automations import ESCALATION_AUTOMATION, ensure_automations

    first = ensure_automations(case_db)
    second = ensure_automations(case_db)
    assert second == []
    assert first in ([ESCALATION_AUTOMATION], [])  # another test may have created it already
    found = prefect_client.read_automations_by_name(ESCALATION_AUTOMATION)
    assert len(found) == 1
    assert found[0].trigger.expect == {"rujukan.step.escalated"}


def test_sync_of_many_referrals_costs_no_process(case_db, with_prefect, prefect_client):
    referrals = [launch_one(case_db) for _ in range(10)]
    started = time.perf_counter()
    sync_referrals(case_db, [r.id for r in referrals], prefect_client)
    elapsed = time.perf_counter() - started
    print(f"\nsync of 10 new referral runs: {elapsed:.2f} s ({elapsed * 100:.0f} ms a referral)")
    assert all(run_of(prefect_client, r).name == r.reference for r in referrals)


def test_a_mass_launch_is_left_to_the_catch_up_in_bounded_passes(
    case_db, with_prefect, prefect_client
):
    from flows.referral import catch_up
    from flows.wake import WAKE_LIMIT

    referrals = [launch_one(case_db) for _ in range(WAKE_LIMIT + 5)]
    after_commit(case_db, [r.id for r in referrals])  # the caller does not wait for Prefect:
    with Session(engine_for(case_db.resolved_database_url)) as session:  # no run made yet
        assert all(session.get(Referral, r.id).flow_run_id is None for r in referrals)
    passes = [catch_up(case_db, prefect_client, limit=12)]
    # The first call gives every referral its run (in bulk), and 12 of them their histories.
    with Session(engine_for(case_db.resolved_database_url)) as session:
        assert all(session.get(Referral, r.id).flow_run_id for r in referrals)
    with_history = [
        r for r in referrals if task_run_names(prefect_client, run_of(prefect_client, r).id)
    ]
    assert len(with_history) == 12
    passes += [catch_up(case_db, prefect_client, limit=12) for _ in range(3)]
    assert passes == [12, 12, WAKE_LIMIT + 5 - 24, 0]
    assert all(run_of(prefect_client, r).name == r.reference for r in referrals)


def test_referrals_without_a_run_get_theirs_in_bulk_before_any_history(
    case_db, with_prefect, prefect_client
):
    """A batch shows in Prefect whole in a few calls (Prefect's bulk create, 100 a call), each
    run named, tagged, started and Suspended; the catch-up that follows gives them their
    histories without reading them again."""
    from prefect.client.orchestration import get_client

    from flows.referral import catch_up, open_missing_runs

    referrals = [launch_one(case_db) for _ in range(120)]
    made: dict = {}
    calls: list = []
    hooks = {"event_hooks": {"request": [calls.append]}}
    with get_client(sync_client=True, httpx_settings=hooks) as client:
        assert open_missing_runs(case_db, client, made) == 120
        opening = [f"{c.method} {c.url.path}" for c in calls]
        assert len(opening) <= 12, opening  # one at a time, it was two calls a referral
        assert open_missing_runs(case_db, client, made) == 0  # every referral has its run
        for referral in referrals:
            run = run_of(prefect_client, referral)
            assert run.name == referral.reference
            assert {"referral", "pathway:tppo-dewasa"} <= set(run.tags)
            assert run.state.name == "Suspended" and run.state.state_details.pause_reschedule
            assert run.start_time is not None  # not "Scheduled ... (late)" in the UI
            assert task_run_names(prefect_client, run.id) == []  # history follows
        assert set(made) == {r.id for r in referrals}

        calls.clear()
        assert catch_up(case_db, client, limit=200, repair=False, made=made) == 120
        assert made == {}
        reads = ("/flow_runs/filter", "/task_runs/filter", "/artifacts/filter")
        assert not [c for c in calls if c.url.path.endswith(reads)]
        for referral in referrals[:5]:
            assert task_run_names(prefect_client, run_of(prefect_client, referral).id)


def test_a_catch_up_asked_to_stop_ends_between_referrals_and_keeps_its_watermark(
    case_db, with_prefect, prefect_client
):
    """serve stopping mid catch-up: the sync ends before the next referral's history, the
    watermark stays, and the next catch-up does those referrals."""
    from flows.referral import WATERMARK_VARIABLE, Interrupted, catch_up

    referrals = [launch_one(case_db) for _ in range(6)]
    before = prefect_client.read_variable_by_name(WATERMARK_VARIABLE)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Interrupted):
        catch_up(case_db, prefect_client, repair=False, stop=stop)
    after = prefect_client.read_variable_by_name(WATERMARK_VARIABLE)
    assert (after and after.value) == (before and before.value)
    assert all(not task_run_names(prefect_client, run_of(prefect_client, r).id) for r in referrals)
    assert catch_up(case_db, prefect_client, repair=False) >= len(referrals)
    assert all(task_run_names(prefect_client, run_of(prefect_client, r).id) for r in referrals)


def test_a_run_made_by_a_sync_that_did_not_record_it_is_found_again(
    case_db, with_prefect, prefect_client
):
    """A sync that made runs and stopped before recording their ids (a crash): the next one
    finds the same runs by their idempotency keys, and makes no second run of a referral."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from flows.referral import ensure_referral_deployment, open_runs, referral_view

    referrals = [launch_one(case_db) for _ in range(3)]
    deployment = ensure_referral_deployment(prefect_client)
    with Session(engine_for(case_db.resolved_database_url)) as session:
        now = datetime.now(UTC)
        views = [referral_view(session, r, case_db.timezone, now) for r in referrals]
    first = open_runs(prefect_client, views, deployment)  # ids not recorded
    again = open_runs(prefect_client, views, deployment)
    assert all(made for _, made in first.values())
    assert {k: str(run.id) for k, (run, _) in again.items()} == {
        k: str(run.id) for k, (run, _) in first.items()
    }
    assert not any(made for _, made in again.values())
    names = [r.reference for r in referrals]
    runs = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
    )
    assert sorted(r.name for r in runs) == sorted(names)


# --- what a manager sees in the Prefect UI ------------------------------------------------------


def _act(settings: Settings, reference: str, do) -> None:
    """One agency or coordinator action in its own transaction, then the wake-up."""
    with transaction(engine_for(settings.resolved_database_url)) as session:
        referral_id = do(session)
    after_commit(settings, [referral_id])


def _wait_for_events(client, reference: str, count: int, timeout: float = 60) -> list:
    """The referral's rujukan.step.* events, once there are `count` or `timeout` has passed."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout
    while True:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(prefix=["rujukan.step."]),
                resource=EventResourceFilter(id=[reference]),
            ),
            limit=50,
        )
        if len(page.events) >= count or time.monotonic() > deadline:
            return page.events
        time.sleep(0.5)


def test_a_referral_run_has_a_start_time_and_says_what_it_waits_for(
    case_db, with_prefect, prefect_client
):
    """Prefect computes lateness for a run without a start time ("Scheduled for ... (3m late)"
    in the UI): a referral's run gets one, and its state says what it waits for."""
    from prefect.states import Suspended

    from flows.referral import ensure_referral_deployment

    referral = launch_one(case_db)
    after_commit(case_db, [referral.id])
    run = run_of(prefect_client, referral)
    assert run.start_time is not None and run.start_time == run.expected_start_time
    time.sleep(1.5)
    run = run_of(prefect_client, referral)
    assert run.estimated_start_time_delta.total_seconds() == 0  # not late, however long it waits
    assert (run.state.type.value, run.state.name) == ("PAUSED", "Suspended")
    assert run.state.state_details.pause_reschedule  # a suspended run: Resume re-runs it
    assert run.state.message == "waiting for polres-ppa"

    # A run an earlier version made Suspended directly (no start time, and Prefect takes none in
    # the past) is made anew at its next sync, with its history.
    older = launch_one(case_db)
    made = prefect_client.create_flow_run_from_deployment(
        ensure_referral_deployment(prefect_client),
        parameters={"reference": older.reference},
        name=older.reference,
        state=Suspended(timeout_seconds=None),
    )
    assert made.start_time is None
    with transaction(engine_for(case_db.resolved_database_url)) as session:
        session.get(Referral, older.id).flow_run_id = str(made.id)
    after_commit(case_db, [older.id])
    again = run_of(prefect_client, older)
    assert again.id != made.id and again.name == older.reference
    assert "launched" in task_run_names(prefect_client, again.id)
    assert again.start_time == again.expected_start_time
    assert again.estimated_start_time_delta.total_seconds() == 0
    assert (again.state.name, again.state.message) == ("Suspended", "waiting for polres-ppa")


def test_declines_extension_requests_and_reroutes_are_tags_and_events(
    case_db, with_prefect, prefect_client
):
    from models.actions import complete_step, decline_step, request_extension, reroute_step

    referral = launch_one(case_db)
    reference, catalog, now = referral.reference, load_catalog(case_db), datetime.now(UTC)
    police, coordinator = Actor("agency", "ani", "polres-ppa"), Actor("coordinator", "c-1")

    def identified(session):
        step = load_step(session=session, reference=reference, step_ref="identifikasi")
        accept_step(session=session, step=step, actor=police, now=now)
        complete_step(
            session=session, step=step, outcome="served", actor=police, now=now, catalog=catalog
        )
        return step.referral_id

    def declined(session):
        step = load_step(session=session, reference=reference, step_ref="rumah-aman")
        decline_step(
            session=session,
            step=step,
            reason="no-capacity",
            actor=Actor("agency", "ratna", "dinsos"),
            now=now,
        )
        return step.referral_id

    def extension(session):
        step = load_step(session=session, reference=reference, step_ref="kesehatan")
        request_extension(
            session=session,
            step=step,
            until=now + timedelta(days=10),
            reason="victim-unavailable",
            actor=Actor("agency", "hendra", "dinkes"),
            now=now,
        )
        return step.referral_id

    _act(case_db, reference, identified)
    _act(case_db, reference, declined)
    run = run_of(prefect_client, referral)
    assert {"declined", "agency:dinsos", "agency:dinkes"} <= set(run.tags)
    assert "declined, to re-route: rumah-aman" in run.state.message

    def rerouted(session):
        step = load_step(session=session, reference=reference, step_ref="rumah-aman")
        reroute_step(
            session=session, step=step, to_agency="ngo", actor=coordinator, now=now,
            catalog=catalog,
        )  # fmt: skip
        return step.referral_id

    _act(case_db, reference, rerouted)
    _act(case_db, reference, extension)
    run = run_of(prefect_client, referral)
    # Declined and re-routed: both agencies show, with the flags a manager filters on.
    assert {"declined", "rerouted", "extension-requested", "agency:dinsos", "agency:ngo"} <= set(
        run.tags
    )
    assert "extension requested" in run.state.message

    events = {e.event: e for e in _wait_for_events(prefect_client, reference, 3)}
    assert set(events) == {
        "rujukan.step.declined",
        "rujukan.step.rerouted",
        "rujukan.step.extension-requested",
    }
    decline = events["rujukan.step.declined"]
    assert (decline.resource["agency"], decline.resource["step"]) == ("dinsos", "rumah-aman")
    assert decline.payload == {"reason": "no-capacity"}
    reroute = events["rujukan.step.rerouted"]
    assert (reroute.resource["agency"], reroute.resource["to"]) == ("dinsos", "ngo")
    asked = events["rujukan.step.extension-requested"]
    assert asked.resource["agency"] == "dinkes" and asked.payload["reason"] == "victim-unavailable"
    assert any(r.role == "referral-run" for r in decline.related)

    # A second wake-up records nothing twice.
    after_commit(case_db, [referral.id])
    assert len(_wait_for_events(prefect_client, reference, 4, timeout=3)) == 3


def test_the_overdue_table_is_one_key_its_page_shows_it_and_escalations_name_it(
    fast_settings, with_prefect, prefect_client
):
    """overdue-steps is the one table (its Markdown at the top of /artifacts/key/overdue-steps);
    runs read Overdue, then Escalated; the escalation message gives the table's address."""
    from prefect.client.schemas.actions import ArtifactCreate

    from flows.sweep import deadline_sweep_at
    from models.outbox import MessageEvent
    from notifications.render import render_outbox_message

    for old in ("overdue-dinsos", "referral-rjk-aaaa-aa"):  # keys of an earlier version
        prefect_client.create_artifact(ArtifactCreate(key=old, type="table", data="[]"))
    t0 = datetime.now(UTC)
    referral = launch_one(fast_settings, "uji-detik", now=t0)
    after_commit(fast_settings, [referral.id])
    deadline_sweep_at(t0 + timedelta(seconds=6))
    run = run_of(prefect_client, referral)
    assert (run.state.type.value, run.state.name) == ("PAUSED", "Overdue")
    assert "overdue: see the overdue-steps artifact" in run.state.message
    deadline_sweep_at(t0 + timedelta(seconds=11))
    run = run_of(prefect_client, referral)
    assert (run.state.type.value, run.state.name) == ("PAUSED", "Escalated")

    newest = artifact_versions(prefect_client, "overdue-steps")[0]
    rows = [r for r in json.loads(newest.data) if r["reference"] == referral.reference]
    assert rows == [
        {
            "reference": referral.reference,
            "step": "identifikasi",
            "agency": "polres-ppa",
            "due": rows[0]["due"],
            "hours overdue": 0.0,
            "escalated": "yes",
        }
    ]
    assert rows[0]["due"].endswith(" WIB")
    assert "| reference | step | agency | due | overdue by | escalated |" in newest.description
    assert f"[{referral.reference}](/runs/flow-run/{run.id})" in newest.description
    for old in ("overdue-dinsos", "referral-rjk-aaaa-aa"):
        assert artifact_versions(prefect_client, old) == []

    url = fast_settings.overdue_table_url
    assert url == "http://127.0.0.1:4200/artifacts/key/overdue-steps"
    catalog = load_catalog(fast_settings)
    with Session(engine_for(fast_settings.resolved_database_url)) as session:
        escalation = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.referral_id == referral.id,
                OutboxMessage.event == MessageEvent.escalated,
            )
        ).one()
        message = render_outbox_message(
            session, message=escalation, catalog=catalog, settings=fast_settings, now=t0
        )
    assert url in message.text and url in message.html and url in message.markdown


def test_the_shipped_automation_marks_the_escalated_run_and_shows_its_action(
    case_db, with_prefect, prefect_client
):
    from prefect.automations import AutomationCore
    from prefect.events import emit_event
    from prefect.events.actions import ChangeFlowRunState, DoNothing

    from flows.automations import (
        ESCALATED_MESSAGE,
        ESCALATION_AUTOMATION,
        ensure_automations,
        escalation_trigger,
    )
    from flows.referral import repair_runs
    from flows.server import deliver_events

    # The automation of the version before (Do nothing: an empty Action box in the editor).
    for automation in prefect_client.read_automations_by_name(ESCALATION_AUTOMATION):
        prefect_client.delete_automation(automation.id)
    prefect_client.create_automation(
        AutomationCore(
            name=ESCALATION_AUTOMATION, trigger=escalation_trigger(), actions=[DoNothing()]
        )
    )
    assert ensure_automations(case_db) == []
    (shipped,) = prefect_client.read_automations_by_name(ESCALATION_AUTOMATION)
    (action,) = shipped.actions
    assert isinstance(action, ChangeFlowRunState) and action.force
    assert (action.state.value, action.name) == ("PAUSED", "Escalated")

    # An escalation event about a referral's run: the run reads Escalated with the message.
    referral = launch_one(case_db)
    after_commit(case_db, [referral.id])
    run = run_of(prefect_client, referral)
    emit_event(
        "rujukan.step.escalated",
        resource={"prefect.resource.id": referral.reference, "agency": "polres-ppa"},
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{run.id}",
                "prefect.resource.role": "referral-run",
            }
        ],
    )
    deliver_events()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = prefect_client.read_flow_run(run.id).state
        if state.message == ESCALATED_MESSAGE:
            break
        time.sleep(0.5)
    assert (state.type.value, state.name, state.message) == (
        "PAUSED",
        "Escalated",
        ESCALATED_MESSAGE,
    )
    # The case database decides: nothing is escalated, so the sweep's repair puts it back.
    assert repair_runs(case_db, prefect_client) == 1
    back = prefect_client.read_flow_run(run.id).state
    assert (back.name, back.state_details.pause_reschedule) == ("Suspended", True)


def test_a_cli_write_with_prefect_up_prints_no_events_worker_warning(
    case_db, with_prefect, tmp_path
):
    """Each write creates the referral's table, and Prefect's client queues an event for it; the
    command delivers it before exiting instead of leaving Prefect's drain to warn at exit."""
    import os
    import subprocess
    import sys

    rujukan = str(Path(sys.executable).parent / "rujukan")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_API_URL=with_prefect,
        RUJUKAN_HOME=str(case_db.home),
        RUJUKAN_SECRET_KEY="test-secret-key",
    )

    def write(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [rujukan, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done

    started = time.monotonic()
    launched = write("launch", "--intake", str(PROJECT_ROOT / "examples" / "intake.json"))
    print(f"\na CLI write with Prefect up: {time.monotonic() - started:.1f} s")
    assert "EventsWorker" not in launched.stderr and "WARNING" not in launched.stderr, (
        launched.stderr
    )
    with Session(engine_for(case_db.resolved_database_url)) as session:
        assert session.exec(select(Referral)).one().flow_run_id  # Prefect was woken
