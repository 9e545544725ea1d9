"""The vocabulary is complete: every code has both labels, every audit action used exists."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from models.directory import Locale
from models.intake import CaseOptions
from models.referral import ReferralStatus
from models.settings import PROJECT_ROOT
from models.step import StepStatus
from models.vocabulary import (
    CASE_OPTION_LABELS,
    CODE_KINDS,
    LABELS,
    LOCALES,
    AtRiskCode,
    AuditAction,
    CancelCode,
    CaseSourceCode,
    DeclineCode,
    ExploitationCode,
    ExtensionCode,
    OutcomeCode,
    RecruitmentCode,
    ReportCloseCode,
    all_codes,
    label,
)

CODE_ENUMS = (
    OutcomeCode,
    DeclineCode,
    CancelCode,
    CaseSourceCode,
    ExploitationCode,
    RecruitmentCode,
    ExtensionCode,
    ExploitationCode,
    CaseSourceCode,
    RecruitmentCode,
    ReportCloseCode,
    AtRiskCode,
    StepStatus,
    ReferralStatus,
    AuditAction,
)
SOURCE_DIRS = ("models", "web", "flows", "cli", "notifications")


def _sources() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for folder in SOURCE_DIRS
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if "migrations" not in path.parts
    ]


@pytest.mark.parametrize("enum", CODE_ENUMS, ids=lambda e: e.__name__)
def test_every_code_has_a_label_in_every_locale(enum):
    table = LABELS[enum]
    assert set(table) == set(enum), f"{enum.__name__}: labels and members differ"
    for member in enum:
        for locale in LOCALES:
            assert label(enum, member, locale).strip(), f"{member!r} has no {locale} label"


def test_every_labelled_kind_is_a_known_enum():
    assert set(LABELS) == set(CODE_ENUMS)
    assert set(CODE_KINDS.values()) <= set(LABELS)


def test_codes_of_one_kind_keep_their_own_labels():
    # "refused" is both an outcome and an audit action; they must not share one label.
    assert label(OutcomeCode, "refused", "en") == "Victim refused the service"
    assert label(AuditAction, "refused", "en") == "REFUSED"
    assert label(DeclineCode, "gone-from-the-enum", "id") == "gone-from-the-enum"
    assert label(DeclineCode, None, "id") == ""


def test_every_case_option_of_the_intake_has_labels():
    assert set(CASE_OPTION_LABELS) == set(CaseOptions.model_fields)
    for words in CASE_OPTION_LABELS.values():
        assert words.id.strip() and words.en.strip()


def test_the_agency_locale_type_names_the_same_locales():
    assert get_args(Locale) == LOCALES


def test_all_codes_lists_every_reason_and_outcome_code_with_both_labels():
    data = all_codes()
    assert set(data) == {
        "outcome",
        "decline-reason",
        "extension-reason",
        "cancel-reason",
        "exploitation",
        "case-source",
        "recruitment",
        "report-close-reason",
        "at-risk",
    }
    for kind, enum in CODE_KINDS.items():
        assert [c["code"] for c in data[kind]] == [m.value for m in enum]
        assert all(set(c) == {"code", "id", "en"} for c in data[kind])


def test_the_history_in_prefect_keeps_the_actions_it_always_had():
    # Stored values are unchanged, so referrals synced before keep the same history.
    assert {a.value for a in AuditAction.history()} == {
        "launched",
        "ready",
        "accepted",
        "declined",
        "completed",
        "skipped",
        "step-cancelled",
        "rerouted",
        "overdue",
        "escalated",
        "extension-requested",
        "extension-approved",
        "extension-refused",
        "referral-completed",
        "referral-cancelled",
        "report-filed",
        "report-asked",
        "report-answered",
        "report-forwarded",
        "report-launched",
        "report-closed",
    }


def test_every_audit_action_named_in_the_code_exists_and_every_action_is_used():
    used: set[str] = set()
    unknown: list[str] = []
    literal: list[str] = []
    for path, tree in _sources():
        where = path.relative_to(PROJECT_ROOT)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "AuditAction"
                and not node.attr.startswith("_")
                and node.attr != "history"
            ):
                used.add(node.attr)
                if node.attr not in AuditAction.__members__:
                    unknown.append(f"{where}:{node.lineno} AuditAction.{node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "record"
            ):
                for keyword in node.keywords:
                    if keyword.arg == "action" and isinstance(keyword.value, ast.Constant):
                        literal.append(f"{where}:{node.lineno} action={keyword.value.value!r}")
    assert unknown == []
    assert literal == [], "record(...) takes an AuditAction member, not a string"
    assert set(AuditAction.__members__) - used == set(), "actions nothing records"
