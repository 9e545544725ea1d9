"""Errors never repeat what was typed: a person's name or phone put where a key, a field, a code,
an agency or a step belongs comes back in no output and no audit entry (issue 10, finding 7).

An intake whose extra key was "Siti ... 0812-..." used to come back verbatim as
"person.Siti ...: Extra inputs are not permitted". Every path the command line offers is thrown
at here with canaries: extra keys at every nesting level, wrong values in every field, unknown
agency slugs, step keys and codes, bad options, and the intake file's own name.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from cli.context import run
from cli.main import app
from models.audit import AuditEntry
from models.database import engine_for
from models.settings import PROJECT_ROOT

NAME = "Siti Rahasia"
PHONE = "0812-9431-7789"
SLUG = "rahasia-siti"  # shaped like an agency slug, a step key or a code: still not one
# What must never come back; "siti" alone is not enough ("transition" contains it).
MARKS = ("rahasia", "9431-7789", "94317789")
EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
RUJUKAN = str(Path(sys.executable).parent / "rujukan")


def _leaks(*texts: str) -> list[str]:
    joined = " ".join(texts).lower()
    return [mark for mark in MARKS if mark in joined]


@pytest.fixture
def rujukan(settings, monkeypatch, capsys):
    """Run a command through the console entry point's own code; return (exit code, out, err)."""
    monkeypatch.delenv("RUJUKAN_DATABASE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # no Prefect: nothing to wait for

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            run(app, list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _, err = invoke("init")
    assert code == 0, err
    return invoke


def _audit(settings) -> str:
    """Every audit entry but its hashes (hex digits could spell a canary's digits by chance)."""
    with Session(engine_for(settings.resolved_database_url)) as session:
        rows = session.exec(select(AuditEntry)).all()
    return json.dumps([row.model_dump(mode="json", exclude={"hash", "prev_hash"}) for row in rows])


def _refused(rujukan, tmp_path: Path, intake: Any, settings) -> str:
    """Launch `intake`; it must be refused, and repeat nothing. Returns the error text."""
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(intake))
    code, out, err = rujukan("launch", "--intake", str(path), "--json")
    assert code == 2, (out, err)
    assert _leaks(out, err, _audit(settings)) == [], err
    return err


def _with(intake: dict, path: tuple[str, ...], value: Any) -> dict:
    changed = copy.deepcopy(intake)
    target = changed
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return changed


OVERRIDE = _with(EXAMPLE, ("consent",), {"override": {"by": "c-1", "reason": "emergency"}})
LEVELS = {
    "top": (EXAMPLE, ()),
    "person": (EXAMPLE, ("person",)),
    "consent": (EXAMPLE, ("consent",)),
    "consent.override": (OVERRIDE, ("consent", "override")),
    "case": (EXAMPLE, ("case",)),
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("key", [f"{NAME} {PHONE}", SLUG, PHONE])
def test_an_unknown_key_at_any_level_is_named_only_as_unknown(
    rujukan, tmp_path, settings, level, key
):
    base, where = LEVELS[level]
    err = _refused(rujukan, tmp_path, _with(base, (*where, key), {NAME: PHONE}), settings)
    # Still says what is wrong and how to fix it: where, and which fields are allowed there.
    assert f"{'.'.join(where) or 'intake'}: an unknown field (allowed: " in err


# Every field of the intake, with the wrong kinds of value. Free-text and id fields take a
# string as it is (a name is a name), so they get only values of the wrong type; a phone field
# takes the phone.
FIELDS = {
    ("pathway",): "any",
    ("urgency",): "any",
    ("coordinator_agency",): "any",
    ("person",): "any",
    ("person", "name"): "typed",
    ("person", "sex"): "any",
    ("person", "birth_year"): "any",
    ("person", "nationality"): "any",
    ("person", "languages"): "any",
    ("person", "phone"): "phone",
    ("person", "home_district"): "typed",
    ("person", "address"): "typed",
    ("consent",): "any",
    ("consent", "agencies"): "any",
    ("consent", "recorded_by"): "typed",
    ("case",): "any",
    ("case", "wants_prosecution"): "any",
    ("case", "needs_shelter"): "any",
    ("case", "claims_restitution"): "any",
    ("case", "wants_return"): "any",
}
WRONG_TYPES = [{NAME: PHONE}, [NAME, PHONE], [{NAME: [PHONE]}], 94317789.5]
WRONG_TEXT = [f"{NAME} {PHONE}", SLUG, PHONE, f"{NAME}\u202e{PHONE}"]


@pytest.mark.parametrize("field", FIELDS, ids=".".join)
def test_a_wrong_value_in_any_field_is_not_repeated(rujukan, tmp_path, settings, field):
    text = {"any": WRONG_TEXT, "phone": [f"{NAME} {PHONE}", SLUG], "typed": []}[FIELDS[field]]
    values = WRONG_TYPES + text
    for value in values:
        err = _refused(rujukan, tmp_path, _with(EXAMPLE, field, value), settings)
        assert err.startswith("error: "), err


def test_agency_slugs_in_the_intake_are_repeated_only_when_known(rujukan, tmp_path, settings):
    intake = _with(EXAMPLE, ("consent", "agencies"), ["dinsos", SLUG, f"{NAME} {PHONE}"])
    _refused(rujukan, tmp_path, intake, settings)
    err = _refused(
        rujukan, tmp_path, _with(EXAMPLE, ("consent", "agencies"), ["dinsos", SLUG]), settings
    )
    assert "unknown agency" in err


def test_broken_json_and_batches_name_the_line_not_its_content(rujukan, tmp_path, settings):
    bad = tmp_path / "intake.json"
    bad.write_text('{"person": {"' + NAME + '": "' + PHONE + '" ')
    code, out, err = rujukan("launch", "--intake", str(bad))
    assert code == 2 and "not valid JSON (line 1" in err
    assert _leaks(out, err) == []
    batch = tmp_path / "rescue.jsonl"
    lines = [json.dumps(EXAMPLE), json.dumps(_with(EXAMPLE, ("person", PHONE), NAME)), f"[{NAME}"]
    batch.write_text("\n".join(lines) + "\n")
    code, out, err = rujukan("launch", "--batch", str(batch))
    assert code == 2 and "--batch line 2: person: an unknown field" in err
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + json.dumps(NAME) + "]" * 100_000)
    code, out, err = rujukan("launch", "--intake", str(deep))
    assert code == 2 and "Traceback" not in err
    assert _leaks(out, err, _audit(settings)) == []


def test_the_intake_files_name_is_not_repeated(rujukan, tmp_path, settings):
    named = tmp_path / f"{NAME} {PHONE}.json"
    named.write_text(json.dumps(_with(EXAMPLE, ("person", "sex"), "Q")))
    for args in (
        ("launch", "--intake", str(named)),
        ("launch", "--intake", str(tmp_path / f"{NAME}.json")),  # not there
        ("launch", "--batch", str(named)),
    ):
        code, out, err = rujukan(*args)
        assert code == 2 and err.startswith(("error: --intake", "error: --batch")), err
        assert _leaks(out, err, _audit(settings)) == []


def test_codes_slugs_step_keys_and_times_typed_on_the_command_line(rujukan, tmp_path, settings):
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(EXAMPLE))
    code, out, err = rujukan("launch", "--intake", str(path), "--json")
    assert code == 0, err
    ref = json.loads(out)["reference"]
    assert rujukan("step", "accept", ref, "identifikasi", "--agency", "polres-ppa")[0] == 0
    typed = [f"{NAME} {PHONE}", SLUG, f"{SLUG}#2", PHONE]
    commands = []
    for value in typed:
        commands += [
            ["step", "accept", ref, value, "--agency", "polres-ppa"],
            ["step", "complete", ref, "identifikasi", "--agency", "polres-ppa", "--outcome", value],
            ["step", "decline", ref, "identifikasi", "--agency", "polres-ppa", "--reason", value],
            [
                "step",
                "extend",
                ref,
                "identifikasi",
                "--agency",
                "polres-ppa",
                "--until",
                value,
                "--reason",
                "other",
            ],
            [
                "step",
                "extend",
                ref,
                "identifikasi",
                "--agency",
                "polres-ppa",
                "--until",
                "2099-01-01T09:00+07:00",
                "--reason",
                value,
            ],
            ["step", "reroute", ref, "identifikasi", "--to", value, "--by", "c-1"],
            ["step", "cancel", ref, value, "--reason", "duplicate", "--by", "c-1"],
            ["step", "cancel", ref, "identifikasi", "--reason", value, "--by", "c-1"],
            ["referral", "cancel", ref, "--reason", value, "--by", "c-1"],
            ["referral", "show", value],
            ["consent", "add", ref, "--agency", value, "--by", "c-1"],
            ["steps", "--agency", value],
            ["steps", "--overdue", "--at", value],
            ["pathways", "show", value],
            ["outbox", "list", "--status", value],
            ["audit", "verify", "--anchor", f"{value}:{'0' * 64}"],
            ["audit", "verify", "--anchor", f"1:{value}"],
            ["access", "link", "--agency", value],
            ["access", "withdraw-links", "--agency", value, "--by", "c-1"],
        ]
    leaked = []
    for args in commands:
        code, out, err = rujukan(*args)
        if code != 2 or _leaks(out, err):
            leaked.append((args, code, err.strip()))
    assert leaked == [], "\n".join(map(str, leaked))
    assert _leaks(_audit(settings)) == []
    # The referral is as it was: nothing typed above changed it.
    shown = json.loads(rujukan("referral", "show", ref, "--json")[1])
    assert shown["status"] != "cancelled" and _leaks(json.dumps(shown)) == []


def test_usage_errors_do_not_repeat_what_was_typed(rujukan):
    for args in (
        ["steps", "--status", SLUG],
        ["outbox", "retry", f"{NAME} {PHONE}"],
        ["access", "issue", "--agency", "dinsos", "--days", PHONE],
        ["steps", f"--{SLUG}"],
        ["steps", f"{NAME} {PHONE}"],
        [SLUG],
        ["step", SLUG],
    ):
        code, out, err = rujukan(*args)
        assert code == 2, (args, err)
        assert _leaks(out, err) == [], (args, err)
        assert "error: " in err and "Usage: rujukan" in err
    # Still helpful: the allowed values of a choice are named.
    assert "one of pending, ready" in rujukan("steps", "--status", SLUG)[2]


def test_the_installed_command_repeats_nothing(tmp_path):
    """The console script end to end, stdin included."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RUJUKAN_", "PREFECT_API"))},
        "RUJUKAN_HOME": str(tmp_path / "var"),
        "RUJUKAN_SECRET_KEY": "echo-test-key",
    }

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [RUJUKAN, *args],
            capture_output=True,
            text=True,
            env=env,
            input=stdin,
            cwd=tmp_path,
            timeout=120,
        )

    assert cli("init").returncode == 0
    intake = json.dumps(_with(EXAMPLE, ("person", f"{NAME} {PHONE}"), PHONE))
    named = tmp_path / f"{NAME}.json"
    named.write_text(intake)
    for result in (
        cli("launch", "--intake", "-", stdin=intake),
        cli("launch", "--intake", str(named)),
        cli("steps", "--status", f"{NAME} {PHONE}"),
    ):
        assert result.returncode == 2, result.stderr
        assert _leaks(result.stdout, result.stderr) == [], result.stderr
        assert "Traceback" not in result.stderr
    audit = cli("referral", "show", "RJK-0000-00")  # any command: the trail is read below
    assert audit.returncode == 2
    import sqlite3

    with sqlite3.connect(tmp_path / "var" / "rujukan.db") as db:
        rows = db.execute("SELECT actor, action, detail FROM auditentry").fetchall()
    assert len(rows) >= 2 and _leaks(json.dumps(rows)) == []


def test_an_agency_typed_for_a_step_is_not_repeated(rujukan, tmp_path, settings):
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(EXAMPLE))
    code, out, err = rujukan("launch", "--intake", str(path), "--json")
    assert code == 0, err
    ref = json.loads(out)["reference"]
    for value in (f"{NAME} {PHONE}", SLUG, PHONE):
        code, out, err = rujukan("step", "accept", ref, "kesehatan", "--agency", value)
        assert code == 2 and _leaks(out, err) == [], err
