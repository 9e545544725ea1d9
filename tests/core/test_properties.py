"""Hostile input and random action sequences: Hypothesis property and stateful tests."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from pydantic import ValidationError
from sqlmodel import select

from models.actions import (
    Actor,
    accept_step,
    complete_step,
    decide_extension,
    decline_step,
    launch,
    load_step,
    request_extension,
    reroute_step,
)
from models.catalog import load_catalog
from models.database import make_engine, migrate, transaction
from models.deadline import parse_duration
from models.errors import RujukanError
from models.intake import Intake
from models.outbox import OutboxMessage
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings
from models.step import Step, StepStatus, check_transition
from models.sweep import sweep
from tests.accounting import accounting_problems

EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())


def _intake_with(**person) -> dict:
    data = json.loads(json.dumps(EXAMPLE))
    data["person"].update(person)
    return data


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_name_is_accepted_cleanly_or_refused_without_echo(text):
    name = "Qzx" + text  # a marker that no error message contains by chance
    try:
        intake = Intake.model_validate(_intake_with(name=name))
    except ValidationError as exc:
        assert "Qzx" not in str(exc)
        return
    accepted = intake.person.name
    assert 1 <= len(accepted) <= 200
    assert all(ord(c) >= 32 and c not in "\u202e\u200f\u200b" for c in accepted)


@given(st.sampled_from(["Siti", "Sіti", "Ѕiti Contoh", "Αnna"]))
def test_mixed_script_look_alikes_are_refused(name):
    mixed = any(ord(c) > 127 for c in name) and any("a" <= c.lower() <= "z" for c in name)
    if mixed:
        with pytest.raises(ValidationError, match="look-alike"):
            Intake.model_validate(_intake_with(name=name))
    else:
        Intake.model_validate(_intake_with(name=name))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_deadline_text_parses_or_says_how_to_write_it(text):
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        assert "PT24H" in str(exc) or "zero" in str(exc) or "at least" in str(exc)
        return
    start = datetime(2026, 12, 7, 2, tzinfo=UTC)
    assert duration.add_to(start) > start


@given(
    st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=9))])
    ),
    st.integers(min_value=1, max_value=30),
)
def test_working_days_never_land_on_a_weekend_or_come_early(start, days):
    due = parse_duration(f"{days} working days").add_to(start, "Asia/Jakarta")
    # In the zone's own offset of that date (before 1924 Jakarta kept local mean time, +07:07).
    local = due.astimezone(ZoneInfo("Asia/Jakarta"))
    assert local.weekday() < 5
    assert due >= start + timedelta(days=days)


@given(st.sampled_from(list(StepStatus)), st.sampled_from(list(StepStatus)))
def test_the_transition_table_is_the_only_judge(current, target):
    try:
        check_transition(current, target)
    except RujukanError as exc:
        assert str(exc)


class ReferralMachine(RuleBasedStateMachine):
    """Random launches, actions, duplicates, sweeps and clock jumps against one database."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = datetime(2026, 12, 7, 2, tzinfo=UTC)
        self.references: list[str] = []

    @initialize()
    def database(self) -> None:
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{self.tmp.name}/case.db"
        migrate(url)
        self.engine = make_engine(url)
        self.catalog = load_catalog(Settings(home=self.tmp.name))
        self.sealer = Sealer("property-key")

    def teardown(self) -> None:
        self.engine.dispose()
        self.tmp.cleanup()

    def _try(self, fn, *, reference, step, agency=None, **kwargs) -> None:
        try:
            with transaction(self.engine) as session:
                row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
                fn(session=session, step=row, now=self.clock, **kwargs)
        except RujukanError:
            pass  # refused or already done: the invariants check that nothing half-happened

    def _pick(self, data, statuses) -> Step | None:
        with transaction(self.engine) as session:
            steps = session.exec(
                select(Step).where(Step.status.in_(statuses)).order_by(Step.id)
            ).all()  # type: ignore[attr-defined]
        return data.draw(st.sampled_from(steps)) if steps else None

    def _reference(self, step: Step) -> str:
        from models.referral import Referral

        with transaction(self.engine) as session:
            return session.get(Referral, step.referral_id).reference  # type: ignore[union-attr]

    @rule(
        pathway=st.sampled_from(["tppo-dewasa", "tppo-anak", "pmi-pulang"]),
        prosecution=st.booleans(),
        urgency=st.sampled_from(["regular", "emergency"]),
    )
    def launch_one(self, pathway, prosecution, urgency) -> None:
        data = json.loads(json.dumps(EXAMPLE))
        data.update(pathway=pathway, urgency=urgency, case={"wants_prosecution": prosecution})
        data["consent"] = {"override": {"by": "coordinator-1", "reason": "test"}}
        with transaction(self.engine) as session:
            referral = launch(
                session,
                intake=Intake.model_validate(data),
                catalog=self.catalog,
                sealer=self.sealer,
                now=self.clock,
            )
        self.references.append(referral.reference)

    @rule(data=st.data(), twice=st.booleans())
    def accept(self, data, twice) -> None:
        step = self._pick(data, [StepStatus.ready])
        if step:
            for _ in range(2 if twice else 1):
                self._try(
                    accept_step,
                    reference=self._reference(step),
                    step=f"{step.key}#{step.instance}",
                    agency=step.agency,
                    actor=Actor("agency", "p", step.agency),
                )

    @rule(data=st.data(), outcome=st.sampled_from(["served", "refused", "bogus"]))
    def complete(self, data, outcome) -> None:
        step = self._pick(data, [StepStatus.accepted, StepStatus.ready])
        if step:
            self._try(
                complete_step,
                reference=self._reference(step),
                step=f"{step.key}#{step.instance}",
                agency=step.agency,
                outcome=outcome,
                actor=Actor("agency", "p", step.agency),
                catalog=self.catalog,
            )

    @rule(data=st.data())
    def decline_and_reroute(self, data) -> None:
        step = self._pick(data, [StepStatus.ready, StepStatus.accepted])
        if step:
            reference = self._reference(step)
            self._try(
                decline_step,
                reference=reference,
                step=f"{step.key}#{step.instance}",
                agency=step.agency,
                reason="no-capacity",
                actor=Actor("agency", "p", step.agency),
            )
            if data.draw(st.booleans()):
                self._try(
                    reroute_step,
                    reference=reference,
                    step=step.key,
                    to_agency="ngo",
                    actor=Actor("coordinator", "c"),
                    catalog=self.catalog,
                )

    @rule(data=st.data(), days=st.integers(min_value=1, max_value=10))
    def extend(self, data, days) -> None:
        step = self._pick(data, [StepStatus.ready, StepStatus.accepted])
        if step and step.due_at:
            reference = self._reference(step)
            self._try(
                request_extension,
                reference=reference,
                step=f"{step.key}#{step.instance}",
                agency=step.agency,
                until=step.due_at + timedelta(days=days),
                reason="other",
                actor=Actor("agency", "p", step.agency),
            )
            self._try(
                decide_extension,
                reference=reference,
                step=f"{step.key}#{step.instance}",
                approve=data.draw(st.booleans()),
                actor=Actor("coordinator", "c"),
            )

    @rule(hours=st.sampled_from([1, 6, 23, 48, 24 * 30]))
    def clock_jump_and_sweep(self, hours) -> None:
        self.clock += timedelta(hours=hours)
        for _ in range(2):
            with transaction(self.engine) as session:
                sweep(session, catalog=self.catalog, now=self.clock)

    @invariant()
    def one_open_instance_per_step(self) -> None:
        if not hasattr(self, "engine"):
            return
        with transaction(self.engine) as session:
            steps = session.exec(select(Step)).all()
        live = Counter(
            (s.referral_id, s.key)
            for s in steps
            if (s.is_open or s.awaits_reroute) and s.offset is None
        )
        assert all(n == 1 for n in live.values()), live

    @invariant()
    def one_notice_per_step_and_deadline(self) -> None:
        if not hasattr(self, "engine"):
            return
        with transaction(self.engine) as session:
            rows = session.exec(select(OutboxMessage)).all()
        notices = Counter(
            (m.step_id, m.event, m.due_at)
            for m in rows
            if m.event.value in ("reminder", "overdue", "escalated")
        )
        assert all(n == 1 for n in notices.values()), notices

    @invariant()
    def records_add_up(self) -> None:
        if not hasattr(self, "engine"):
            return
        with transaction(self.engine) as session:
            assert accounting_problems(session) == []


TestReferralMachine = ReferralMachine.TestCase
TestReferralMachine.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


_PATHWAY = (PROJECT_ROOT / "pathways" / "tppo-wna.yaml").read_text()
_DIRECTORY = (PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml").read_text()
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    step=st.integers(min_value=0, max_value=6),
    field=st.sampled_from(
        [
            "key",
            "agency",
            "deadline",
            "depends_on",
            "when",
            "repeat",
            "sees",
            "escalate_after",
            "remind_before",
            "template",
            "title",
            "basis",
            "extra",
        ]
    ),
    value=_junk,
)
def test_any_mutated_pathway_loads_or_is_refused_naming_the_file(
    tmp_path_factory, step, field, value
):
    import yaml

    from models.directory import load_directory
    from models.errors import BadInput
    from models.pathway import load_pathway_file

    data = yaml.safe_load(_PATHWAY)
    data["steps"][step][field] = value
    path = tmp_path_factory.mktemp("p") / "mutated.yaml"
    path.write_text(yaml.safe_dump(data))
    directory = load_directory(PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml")
    try:
        load_pathway_file(path, directory, {"assigned"})
    except BadInput as exc:
        assert str(exc).startswith(f"{path}: ")
        assert "Traceback" not in str(exc)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    agency=st.integers(min_value=0, max_value=12),
    field=st.sampled_from(
        [
            "slug",
            "name",
            "kind",
            "timezone",
            "locale",
            "escalation_target",
            "hide_step_titles",
            "extra",
        ]
    ),
    value=_junk,
)
def test_any_mutated_directory_loads_or_is_refused_naming_the_file(
    tmp_path_factory, agency, field, value
):
    import yaml

    from models.directory import load_directory
    from models.errors import BadInput

    data = yaml.safe_load(_DIRECTORY)
    data["agencies"][agency][field] = value
    path = tmp_path_factory.mktemp("d") / "agencies.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        directory = load_directory(path)
    except BadInput as exc:
        assert str(exc).startswith(f"{path}: ")
        return
    assert len({a.slug for a in directory.agencies}) == 13
