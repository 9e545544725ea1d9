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
    references = [json.loads(line)["reference"] for line in result.output.splitlines()]
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
    passes = [catch_up(case_db, prefect_client, limit=12) for _ in range(4)]
    assert passes == [12, 12, WAKE_LIMIT + 5 - 24, 0]
    assert all(run_of(prefect_client, r).name == r.reference for r in referrals)
