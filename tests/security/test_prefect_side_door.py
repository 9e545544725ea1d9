"""Prefect is a window, not a door: whoever reaches its API changes no case and learns no secret.

Prefect's open-source server has no roles: anyone who reaches its API (every local account, a
manager given the UI to watch) can run any deployment with parameters of their choosing, cancel,
fail, delete or force the state of any run, edit variables, emit events and read every block with
its secrets. Each test tries one of these against a real Prefect test server and checks that the
case database is unchanged and the views come back.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from flows.referral import (
    REFERRAL_DEPLOYMENT,
    REFERRAL_FLOW,
    WATERMARK_VARIABLE,
    catch_up,
    sync_referrals,
)
from models.actions import Actor, accept_step, cancel_referral, find_referral, launch, load_step
from models.audit import AuditEntry
from models.catalog import load_catalog
from models.database import engine_for, transaction
from models.intake import Intake
from models.outbox import OutboxMessage
from models.referral import Referral, ReferralStatus
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings
from models.step import Step

pytestmark = pytest.mark.prefect

# Every parameter a served deployment may take: name -> JSON type. Nothing else, ever.
ALLOWED = {
    "referral": {"reference": "string"},
    "deadline-sweep": {},
    "report-monthly": {"span": "string"},
    "report-quarterly": {"span": "string"},
}
# Words that would mean a parameter carries a file, intake data, a person, an actor or a clock.
FORBIDDEN = re.compile(
    r"path|file|dir|intake|person|name|phone|birth|address|actor|by|user|coordinator|"
    r"agency|consent|json|data|batch|at|now|when|time|date|outcome|reason|url",
    re.IGNORECASE,
)
AGENCIES = [
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


@pytest.fixture
def with_prefect(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PREFECT_API_URL set for this test, as an operator sets it."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    return prefect_api


@pytest.fixture
def served(case_db: Settings, with_prefect: str) -> Settings:
    """The deployments `rujukan serve` builds, registered on the test server as serve does."""
    from flows.deployments import build_deployments

    for deployment in build_deployments(case_db):
        deployment.apply()
    return case_db


def launched(settings: Settings, pathway: str = "tppo-dewasa") -> Referral:
    """One referral launched through the engine and mirrored into Prefect, as the CLI does."""
    from flows.wake import after_commit

    data = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
    data["pathway"] = pathway
    data["consent"]["agencies"] = AGENCIES
    with transaction(engine_for(settings.resolved_database_url)) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(data),
            catalog=load_catalog(settings),
            sealer=Sealer("k"),
            now=datetime.now(UTC),
        )
    after_commit(settings, [referral.id])
    return referral


def case_snapshot(settings: Settings) -> tuple:
    """Everything a side door could change in the case database: audit, steps, referrals, outbox."""
    with Session(engine_for(settings.resolved_database_url)) as session:
        return (
            session.exec(select(func.max(AuditEntry.seq))).one(),
            sorted(
                (s.referral_id, s.key, s.instance, s.status.value, str(s.due_at))
                for s in session.exec(select(Step))
            ),
            sorted((r.reference, r.status.value) for r in session.exec(select(Referral))),
            session.exec(select(func.count()).select_from(OutboxMessage)).one(),
        )


def run_of(client, settings: Settings, referral: Referral):
    """The referral's own flow run, as the case database records it."""
    with Session(engine_for(settings.resolved_database_url)) as session:
        stored = session.get(Referral, referral.id)
    assert stored is not None and stored.flow_run_id
    return client.read_flow_run(uuid.UUID(stored.flow_run_id))


def runs_named(client, name: str) -> list:
    """Every run of the referral flow with this name."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterName,
    )

    return client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[REFERRAL_FLOW])),
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
    )


# --- deployment parameters ----------------------------------------------------------------------


def test_every_served_deployment_takes_only_whitelisted_parameters(served, prefect_client):
    deployments = {d.name: d for d in prefect_client.read_deployments()}
    assert "launch-batch" not in deployments  # the file-reading launch is gone
    ours = {name: deployments[name] for name in ALLOWED}
    for name, deployment in ours.items():
        schema = deployment.parameter_openapi_schema or {}
        found = {k: v.get("type") for k, v in (schema.get("properties") or {}).items()}
        assert found == ALLOWED[name], f"{name} takes {found}"
        assert deployment.enforce_parameter_schema, f"{name} does not enforce its schema"
        # A default parameter may only be a code of the schema's own list (the report's span).
        for key, value in (deployment.parameters or {}).items():
            assert value in schema["properties"][key].get("enum", []), f"{name} has {key}"
    # The whitelist itself: ids and codes only, no word of a file, a person, an actor or a clock.
    assert not [
        k for spec in ALLOWED.values() for k in spec if FORBIDDEN.search(k.replace("reference", ""))
    ]
    assert ALLOWED["referral"]["reference"] == "string"
    pattern = ours["referral"].parameter_openapi_schema["properties"]["reference"]["pattern"]
    assert re.fullmatch(pattern, "RJK-7QK2-M9") and not re.fullmatch(pattern, "/etc/passwd")


def test_build_deployments_refuses_a_parameter_outside_the_whitelist():
    from flows.deployments import check_parameters

    with pytest.raises(ValueError, match="allowed are"):
        check_parameters(
            "referral",
            {"properties": {"reference": {"type": "string"}, "actor": {"type": "string"}}},
        )
    with pytest.raises(ValueError, match="allowed are"):
        check_parameters("deadline-sweep", {"properties": {"at": {"type": "string"}}})
    with pytest.raises(ValueError, match="not one Rujukan serves"):
        check_parameters("launch-batch", {"properties": {"batch": {"type": "string"}}})


@pytest.mark.parametrize(
    "reference",
    [
        "/etc/passwd",
        "../rujukan.db",
        "Demo Palsu Satu",
        '{"person": {"name": "Demo Palsu"}}',
        "rjk-2345-67 ",
        "RJK-2345-67/../x",
        "",
    ],
)
def test_the_referral_deployment_takes_a_reference_code_and_nothing_else(
    served,
    prefect_client,
    reference,
):
    from prefect.exceptions import PrefectHTTPStatusError

    deployment = prefect_client.read_deployment_by_name(f"{REFERRAL_FLOW}/{REFERRAL_DEPLOYMENT}")
    with pytest.raises(PrefectHTTPStatusError, match="409"):
        prefect_client.create_flow_run_from_deployment(
            deployment.id, parameters={"reference": reference}
        )


def test_no_launch_deployment_and_no_flow_reads_an_intake_file():
    import flows

    folder = Path(flows.__file__).parent
    assert not (folder / "launch.py").exists()
    for source in folder.glob("*.py"):
        text = source.read_text()
        assert "read_text(" not in text or source.name == "server.py", source.name
        assert "Intake.model_validate(json" not in text, source.name


def test_extra_parameters_fail_the_run_before_it_does_anything(served, prefect_client):
    """The server stores unknown parameters; the flow engine refuses them, as in the runner.

    `run_flow(flow, flow_run=run)` is what the runner's child process calls (prefect.engine);
    there an error ends the process and the runner marks the run Crashed.
    """
    from prefect.exceptions import SignatureMismatchError
    from prefect.flow_engine import run_flow

    from flows.referral import referral_flow
    from flows.sweep import deadline_sweep

    referral = launched(served)
    before = case_snapshot(served)
    sweep = prefect_client.read_deployment_by_name("deadline-sweep/deadline-sweep")
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    for extra in ({"at": future}, {"now": future}):
        run = prefect_client.create_flow_run_from_deployment(sweep.id, parameters=extra)
        with pytest.raises(SignatureMismatchError):
            run_flow(deadline_sweep, flow_run=run, return_type="state")
    ref = prefect_client.read_deployment_by_name(f"{REFERRAL_FLOW}/{REFERRAL_DEPLOYMENT}")
    for extra in ({"intake_file": "/etc/passwd"}, {"actor": "coordinator-x"}, {"batch": "b-1"}):
        run = prefect_client.create_flow_run_from_deployment(
            ref.id, parameters={"reference": referral.reference, **extra}
        )
        with pytest.raises(SignatureMismatchError):
            run_flow(referral_flow, flow_run=run, return_type="state")
    assert case_snapshot(served) == before


def test_the_sweep_cannot_be_told_another_moment():
    from flows.sweep import deadline_sweep

    with pytest.raises(Exception, match="at"):
        deadline_sweep(at=datetime.now(UTC) + timedelta(days=30))


# --- runs started or changed by hand --------------------------------------------------------------


def test_a_referral_run_started_by_hand_only_mirrors(served, prefect_client):
    """The UI's Run on the referral deployment: no second Suspended run, no change to the case."""
    from prefect.flow_engine import run_flow

    from flows.referral import referral_flow

    referral = launched(served)
    own = run_of(prefect_client, served, referral)
    before = case_snapshot(served)
    deployment = prefect_client.read_deployment_by_name(f"{REFERRAL_FLOW}/{REFERRAL_DEPLOYMENT}")
    run = prefect_client.create_flow_run_from_deployment(
        deployment.id, parameters={"reference": referral.reference}
    )
    state = run_flow(referral_flow, flow_run=run, return_type="state")
    assert state.is_cancelled(), state
    assert "not this referral's run" in (state.message or "")
    assert case_snapshot(served) == before
    suspended = [r for r in runs_named(prefect_client, referral.reference) if r.state.is_paused()]
    assert [r.id for r in suspended] == [own.id]


def test_a_made_up_reference_changes_nothing(served, prefect_client):
    from prefect.flow_engine import run_flow

    from flows.referral import referral_flow

    launched(served)
    before = case_snapshot(served)
    deployment = prefect_client.read_deployment_by_name(f"{REFERRAL_FLOW}/{REFERRAL_DEPLOYMENT}")
    run = prefect_client.create_flow_run_from_deployment(
        deployment.id, parameters={"reference": "RJK-2222-22"}
    )
    state = run_flow(referral_flow, flow_run=run, return_type="state")
    assert state.is_failed() and "no referral" in (state.message or ""), state
    assert case_snapshot(served) == before


def _cancel_as_the_ui_does(client, run_id) -> None:
    from prefect.states import Cancelling

    client.set_flow_run_state(run_id, Cancelling())  # the server makes a suspended run Cancelled


def _force(state_factory):
    def change(client, run_id) -> None:
        client.set_flow_run_state(run_id, state_factory(), force=True)

    return change


def _delete(client, run_id) -> None:
    client.delete_flow_run(run_id)


def _variants():
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Completed, Crashed, Failed, Paused, Running, State

    return {
        "cancel (UI)": _cancel_as_the_ui_does,
        "cancelled": _force(Cancelled),
        "failed": _force(Failed),
        "completed": _force(Completed),
        "crashed": _force(Crashed),
        "running, stuck": _force(Running),
        "paused, not suspended": _force(lambda: Paused(timeout_seconds=None)),
        "cancelled, named Suspended": _force(
            lambda: State(type=StateType.CANCELLED, name="Suspended")
        ),
        "deleted": _delete,
    }


@pytest.mark.parametrize("variant", list(_variants()))
def test_a_changed_run_of_an_active_referral_comes_back(served, prefect_client, variant):
    referral = launched(served)
    run = run_of(prefect_client, served, referral)
    assert run.state.name == "Suspended"
    _variants()[variant](prefect_client, run.id)
    before = case_snapshot(served)
    # A stuck run counts as stuck at once here; in service after ten minutes (STUCK_AFTER).
    stuck = timedelta(0) if variant == "running, stuck" else timedelta(minutes=10)
    from flows.referral import repair_runs

    repaired = repair_runs(served, prefect_client, stuck_after=stuck)
    assert repaired == 1
    back = run_of(prefect_client, served, referral)
    assert (back.state.type.value, back.state.name) == ("PAUSED", "Suspended")
    assert back.state.state_details.pause_reschedule  # resumable through the runner again
    assert back.name == referral.reference
    if variant == "deleted":
        assert back.id != run.id
    else:
        assert back.id == run.id
    assert case_snapshot(served) == before
    with Session(engine_for(served.resolved_database_url)) as session:
        assert session.get(Referral, referral.id).status == ReferralStatus.active
    assert repair_runs(served, prefect_client) == 0  # nothing left to repair


def test_the_sweep_puts_back_a_cancelled_run(served, prefect_client):
    """The served sweep's own path: catch_up inside `deadline_sweep` repairs a UI Cancel."""
    from flows.sweep import deadline_sweep

    referral = launched(served)
    run = run_of(prefect_client, served, referral)
    _cancel_as_the_ui_does(prefect_client, run.id)
    assert prefect_client.read_flow_run(run.id).state.is_cancelled()
    deadline_sweep()
    back = prefect_client.read_flow_run(run.id)
    assert (back.state.type.value, back.state.name) == ("PAUSED", "Suspended")


def test_a_closed_referral_run_forced_back_to_suspended_is_closed_again(served, prefect_client):
    from prefect.states import Suspended

    from flows.referral import repair_runs

    referral = launched(served)
    with transaction(engine_for(served.resolved_database_url)) as session:
        cancel_referral(
            session=session,
            referral=find_referral(session, referral.reference),
            reason="victim-moved",
            actor=Actor("coordinator", "c-1"),
            now=datetime.now(UTC),
        )
    sync_referrals(served, [referral.id], prefect_client)
    run = run_of(prefect_client, served, referral)
    assert run.state.is_cancelled()
    prefect_client.set_flow_run_state(run.id, Suspended(timeout_seconds=None), force=True)
    before = case_snapshot(served)
    assert repair_runs(served, prefect_client) == 1
    assert prefect_client.read_flow_run(run.id).state.is_cancelled()
    assert case_snapshot(served) == before


def test_a_resume_on_its_way_is_left_alone(served, prefect_client):
    """A manager's Resume (Scheduled, then Running in the runner) is not undone by the sweep."""
    from prefect.flow_runs import resume_flow_run

    from flows.referral import repair_runs

    referral = launched(served)
    run = run_of(prefect_client, served, referral)
    resume_flow_run(run.id)
    assert prefect_client.read_flow_run(run.id).state.type.value == "SCHEDULED"
    assert repair_runs(served, prefect_client) == 0
    assert prefect_client.read_flow_run(run.id).state.type.value == "SCHEDULED"


def test_a_watermark_moved_beyond_the_audit_trail_is_ignored(served, prefect_client):
    """The catch-up watermark is a Prefect variable anyone can edit: set far ahead, it restarts."""
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    referral = launched(served)
    with Session(engine_for(served.resolved_database_url)) as session:
        mark = {"chain": session.get(AuditEntry, 1).hash[:16], "seq": 10**9}
    if prefect_client.read_variable_by_name(WATERMARK_VARIABLE) is None:
        prefect_client.create_variable(VariableCreate(name=WATERMARK_VARIABLE, value=mark))
    else:
        prefect_client.update_variable(VariableUpdate(name=WATERMARK_VARIABLE, value=mark))
    # An agency acts while Prefect is not told (no wake-up): only the catch-up can show it.
    with transaction(engine_for(served.resolved_database_url)) as session:
        accept_step(
            session=session,
            step=load_step(
                session=session,
                reference=referral.reference,
                step_ref="identifikasi",
                agency="polres-ppa",
            ),
            actor=Actor("agency", "ani", "polres-ppa"),
            now=datetime.now(UTC),
        )
    assert catch_up(served, prefect_client) >= 1
    run = run_of(prefect_client, served, referral)
    names = [
        t.name
        for t in prefect_client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    ]
    assert "accepted identifikasi · polres-ppa" in names


# --- what lives in Prefect: no file, no secret ---------------------------------------------------


def test_the_demo_launches_in_process_and_writes_no_intake_file(served, prefect_client):
    from flows.demo import DEMO_BATCH, run_demo

    files_before = set(served.home.rglob("*"))
    references = run_demo(served)
    assert len(references) == 4
    new_files = {p for p in set(served.home.rglob("*")) - files_before if p.is_file()}
    assert not [p for p in new_files if p.suffix in (".jsonl", ".json")], new_files
    assert not (served.home / "demo").exists()
    with Session(engine_for(served.resolved_database_url)) as session:
        batch = session.exec(select(Referral).where(Referral.batch == DEMO_BATCH)).all()
    assert sorted(r.reference for r in batch) == sorted(references)
    for reference in references:
        runs = runs_named(prefect_client, reference)
        assert [r.state.name for r in runs] == ["Suspended"]
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    assert not prefect_client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["launch-batch"]))
    )
    assert run_demo(served) == references  # started again, it launches nothing


def test_no_block_or_automation_holds_the_task_force_webhook(served, prefect_client):
    from prefect.automations import AutomationCore
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from pydantic import SecretStr

    from flows.automations import (
        ESCALATION_AUTOMATION,
        LEGACY_WEBHOOK_BLOCK,
        ensure_automations,
        escalation_trigger,
    )

    hook = "https://hooks.example.invalid/services/T0KEN-" + uuid.uuid4().hex
    # An earlier version's home: the URL in a webhook block, the shipped automation calling it.
    block_id = Webhook(url=hook).save(LEGACY_WEBHOOK_BLOCK, overwrite=True)
    for old in prefect_client.read_automations_by_name(ESCALATION_AUTOMATION):
        prefect_client.delete_automation(old.id)
    prefect_client.create_automation(
        AutomationCore(
            name=ESCALATION_AUTOMATION,
            trigger=escalation_trigger(),
            actions=[CallWebhook(block_document_id=block_id, payload="{}")],
        )
    )
    settings = served.model_copy(update={"task_force_webhook": SecretStr(hook)})
    ensure_automations(settings)

    # What any API caller can read, secrets included, and what the UI reads.
    documents = prefect_client.read_block_documents(include_secrets=True)
    assert hook not in json.dumps([d.model_dump(mode="json") for d in documents], default=str)
    automations = prefect_client.read_automations()
    assert hook not in json.dumps([a.model_dump(mode="json") for a in automations], default=str)
    shipped = prefect_client.read_automations_by_name(ESCALATION_AUTOMATION)
    assert len(shipped) == 1
    assert [a.type for a in shipped[0].actions] == ["change-flow-run-state"]  # the shipped one
    variables = prefect_client.read_variables()
    assert hook not in json.dumps([v.model_dump(mode="json") for v in variables], default=str)
