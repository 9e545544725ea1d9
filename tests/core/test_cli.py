"""The command line end to end, as an operator runs it, on a temporary home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.context import run as cli_run
from cli.main import app
from models.settings import PROJECT_ROOT, get_settings

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"
CANARIES = ("Siti", "Contoh", "812 0000", "2001")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run commands through the console entry point's own code (cli.context.run), in this
    process, on a temporary home: as an operator runs them, without a new interpreter each."""
    monkeypatch.setenv("RUJUKAN_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("RUJUKAN_SECRET_KEY", "cli-test-key")
    monkeypatch.delenv("RUJUKAN_DATABASE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        get_settings.cache_clear()
        try:
            cli_run(app, list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            get_settings.cache_clear()
        captured = capsys.readouterr()
        result = subprocess.CompletedProcess(list(args), code, captured.out, captured.err)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    run("init")
    return run


def test_init_twice_changes_nothing(cli):
    again = cli("init", "--json")
    assert json.loads(again.stdout)["pathway_versions_added"] == []


def test_launch_from_the_example_intake_shows_ready_steps(cli):
    launched = json.loads(cli("launch", "--intake", str(EXAMPLE), "--json").stdout)
    reference = launched["reference"]
    assert launched["ready_steps"] == ["identifikasi"]
    steps = json.loads(cli("steps", "--json").stdout)
    assert [(s["reference"], s["step"], s["agency"], s["status"], s["overdue"]) for s in steps] == [
        (reference, "identifikasi", "polres-ppa", "ready", False)
    ]
    assert steps[0]["due_at"].endswith("+00:00")
    shown = cli("referral", "show", reference).stdout
    assert "identifikasi" in shown and "launched" in shown
    assert not any(c in shown for c in CANARIES)


def test_steps_at_a_future_time_answer_what_will_be_overdue(cli):
    cli("launch", "--intake", str(EXAMPLE))
    assert json.loads(cli("steps", "--overdue", "--json").stdout) == []
    later = json.loads(cli("steps", "--overdue", "--at", "2099-01-01T00:00+07:00", "--json").stdout)
    assert [s["step"] for s in later] == ["identifikasi"] and later[0]["overdue"] is True


def test_agency_actions_move_the_referral(cli):
    reference = json.loads(cli("launch", "--intake", str(EXAMPLE), "--json").stdout)["reference"]
    cli("step", "accept", reference, "identifikasi", "--agency", "polres-ppa")
    again = cli("step", "accept", reference, "identifikasi", "--agency", "polres-ppa")
    assert "already accepted" in again.stderr
    cli(
        "step",
        "complete",
        reference,
        "identifikasi",
        "--agency",
        "polres-ppa",
        "--outcome",
        "served",
    )
    ready = {
        s["step"]: s["agency"]
        for s in json.loads(cli("steps", "--status", "ready", "--json").stdout)
    }
    assert ready == {"kesehatan": "dinkes", "rumah-aman": "dinsos"}
    cli("step", "decline", reference, "rumah-aman", "--agency", "dinsos", "--reason", "no-capacity")
    cli("step", "reroute", reference, "rumah-aman", "--to", "ngo", "--by", "coordinator-1")
    ready = {
        s["step"]: s["agency"]
        for s in json.loads(cli("steps", "--status", "ready", "--json").stdout)
    }
    assert ready == {"kesehatan": "dinkes", "rumah-aman": "ngo"}


def test_batch_launch_prints_one_object_per_intake(cli, tmp_path):
    batch = tmp_path / "rescue.jsonl"
    batch.write_text("\n".join([EXAMPLE.read_text().replace("\n", "")] * 3) + "\n")
    lines = cli("launch", "--batch", str(batch), "--json").stdout.strip().splitlines()
    assert len({json.loads(line)["reference"] for line in lines}) == 3


def _audit_rows(tmp_path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(tmp_path / "var" / "rujukan.db") as db:
        return db.execute("SELECT action, detail, referral_id FROM auditentry").fetchall()


def _count_referrals(cli) -> int:
    return len(json.loads(cli("steps", "--json").stdout))


@pytest.mark.parametrize(
    ("intake", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"pathway": "tppo-dewasa"}), "person: Field required"),
        (
            EXAMPLE.read_text().replace("tppo-dewasa", "tppo-unknown"),
            "unknown pathway (not repeated here",
        ),
        (EXAMPLE.read_text().replace('"lbh", ', ""), "consent is missing for lbh"),
        (
            EXAMPLE.read_text().replace('"ngo"]', '"ngo", "polisi-hutan"]'),
            "unknown agency (not repeated here",
        ),
        (
            EXAMPLE.read_text().replace('"birth_year": 2001', '"birth_year": 3001'),
            "birth_year is in the future",
        ),
        (
            EXAMPLE.read_text().replace("Siti Contoh", "Siti\\u202eContoh"),
            "control or invisible formatting",
        ),
    ],
    ids=[
        "malformed",
        "missing-person",
        "unknown-pathway",
        "missing-consent",
        "unknown-agency",
        "future-birth-year",
        "bidi-control",
    ],
)
def test_bad_intakes_exit_2_write_nothing_and_never_echo_the_person(cli, tmp_path, intake, message):
    path = tmp_path / "bad.json"
    path.write_text(intake)
    result = cli("launch", "--intake", str(path), ok=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not any(c in result.stderr + result.stdout for c in CANARIES)
    assert _count_referrals(cli) == 0
    # Nothing of a case is written; the attempt itself is in the audit trail, without its content.
    [entry] = _audit_rows(tmp_path)
    assert entry[0] == "refused" and json.loads(entry[1])["attempt"] == "launch"
    assert entry[2] is None and not any(c in entry[1] for c in CANARIES)
    assert "intact" in cli("audit", "verify").stdout


@pytest.mark.parametrize(
    ("args", "message", "attempt"),
    [
        (
            [
                "step",
                "complete",
                "{ref}",
                "identifikasi",
                "--agency",
                "polres-ppa",
                "--outcome",
                "served",
            ],
            "accept it first",
            "complete",
        ),
        (
            ["step", "accept", "{ref}", "identifikasi", "--agency", "dinsos"],
            "has no step (not repeated here: not a known code) for you",
            "accept",
        ),
        (
            [
                "step",
                "request-extension",
                "{ref}",
                "identifikasi",
                "--agency",
                "polres-ppa",
                "--until",
                "2026-12-01T09:00",
                "--reason",
                "other",
            ],
            "has no time zone",
            "request-extension",
        ),
        (
            [
                "step",
                "request-extension",
                "{ref}",
                "identifikasi",
                "--agency",
                "polres-ppa",
                "--until",
                "2020-12-01T09:00+07:00",
                "--reason",
                "other",
            ],
            "in the past",
            "request-extension",
        ),
        (
            ["step", "reroute", "{ref}", "identifikasi", "--to", "Siti Contoh", "--by", "c-1"],
            "unknown agency",
            "reroute",
        ),
        (["steps", "--agency", "nobody"], "unknown agency (not repeated here", None),
    ],
    ids=[
        "complete-before-accept",
        "other-agency",
        "naive-time",
        "past-time",
        "reroute-to-a-name",
        "unknown-agency",
    ],
)
def test_bad_actions_exit_2_change_nothing_and_leave_one_refusal_in_the_audit(
    cli, args, message, attempt
):
    reference = json.loads(cli("launch", "--intake", str(EXAMPLE), "--json").stdout)["reference"]
    before = json.loads(cli("referral", "show", reference, "--json").stdout)
    result = cli(*[a.replace("{ref}", reference) for a in args], ok=False)
    assert result.returncode == 2 and message in result.stderr
    assert not any(c in result.stderr + result.stdout for c in CANARIES)
    after = json.loads(cli("referral", "show", reference, "--json").stdout)
    assert after["steps"] == before["steps"] and after["status"] == before["status"]
    added = after["audit"][len(before["audit"]) :]
    assert after["audit"][: len(before["audit"])] == before["audit"]
    if attempt is None:  # a listing is not an action: nothing to audit
        assert added == []
    else:  # the refused attempt, by whom, and the error's kind; never what was typed
        assert [(a["action"], a["detail"]["attempt"], a["detail"]["via"]) for a in added] == [
            ("refused", attempt, "cli")
        ]
        assert not any(c in json.dumps(added) for c in CANARIES)
    assert "intact" in cli("audit", "verify").stdout


def test_pathways_show_json_uses_the_yaml_field_names(cli):
    data = json.loads(cli("pathways", "show", "tppo-anak", "--json").stdout)
    assert data["id"] == "tppo-anak" and data["version"] == 1
    first = data["steps"][0]
    assert {"key", "agency", "deadline", "depends_on", "basis"} <= set(first)


def test_pathways_validate_reports_a_broken_file(cli, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (PROJECT_ROOT / "pathways" / "tppo-wna.yaml")
        .read_text()
        .replace("agency: iom", "agency: unhcr")
    )
    result = cli("pathways", "validate", str(broken), ok=False)
    assert result.returncode == 2 and "unknown agency 'unhcr'" in result.stdout


def test_codes_list_both_languages(cli):
    data = json.loads(cli("codes", "--json").stdout)
    outcomes = {c["code"] for c in data["outcome"]}
    assert {"served", "partly-served", "unreachable", "refused"} <= outcomes
    assert {"no-capacity", "not-eligible", "not-our-mandate", "other"} <= {
        c["code"] for c in data["decline-reason"]
    }
    assert all(c["id"] and c["en"] for cs in data.values() for c in cs)


def test_agencies_list(cli):
    assert len(json.loads(cli("agencies", "list", "--json").stdout)) == 13


def test_audit_verify(cli):
    cli("launch", "--intake", str(EXAMPLE))
    assert "intact" in cli("audit", "verify").stdout


def test_a_saved_anchor_catches_a_chain_rewritten_by_someone_who_knows_the_scheme(cli, tmp_path):
    from sqlmodel import Session, create_engine, select

    from models.audit import AuditEntry, AuditHead, entry_hash

    cli("launch", "--intake", str(EXAMPLE))
    anchor = json.loads(cli("audit", "verify", "--json").stdout)["head"]
    assert cli("audit", "verify", "--anchor", anchor).returncode == 0

    # A forger with write access changes entry 1 and recomputes every hash after it, and the head.
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'rujukan.db'}")
    with Session(engine) as session:
        prev = "0" * 64
        for entry in session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all():
            if entry.seq == 1:
                entry.actor = "coordinator:someone-else"
            entry.prev_hash, entry.hash = prev, entry_hash(prev, entry)
            prev = entry.hash
            session.add(entry)
        head = session.get(AuditHead, 1)
        head.hash = prev
        session.add(head)
        session.commit()
    engine.dispose()

    assert "intact" in cli("audit", "verify").stdout  # the chain alone cannot tell
    caught = cli("audit", "verify", "--anchor", anchor, ok=False)
    assert caught.returncode == 1
    assert f"entry {anchor.split(':')[0]}: is not the entry saved as the anchor" in caught.stdout
    bad = cli("audit", "verify", "--anchor", "12:abc", ok=False)
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr


def test_every_command_has_help_with_an_example():
    from typer.main import get_command

    from cli.main import app

    def walk(command, path=()):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    missing = [" ".join(p) for p, c in walk(get_command(app)) if "Example:" not in (c.help or "")]
    assert missing == []


def test_init_makes_a_key_for_a_new_database_and_never_replaces_a_lost_one(tmp_path):
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUJUKAN_", "PREFECT_API"))}
    env["RUJUKAN_HOME"] = str(home)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [RUJUKAN, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    first = run("init")
    assert first.returncode == 0 and "new secret key" in first.stdout
    key = home / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600
    written = key.read_text()
    assert "new secret key" not in run("init").stdout and key.read_text() == written
    assert run("launch", "--intake", str(EXAMPLE)).returncode == 0

    key.unlink()  # lost: the database now holds data no new key could open
    for args in (("init",), ("launch", "--intake", str(EXAMPLE)), ("serve",)):
        lost = run(*args)
        assert lost.returncode == 1, (args, lost.stderr)
        assert "secret.key" in lost.stderr and "Traceback" not in lost.stderr
        assert not key.exists()


def test_withdrawing_an_agencys_links(cli):
    import re

    link = cli("access", "link", "--agency", "dinsos").stdout
    assert re.search(r"/s/[\w.-]+", link)
    done = cli("access", "withdraw-links", "--agency", "dinsos", "--by", "coordinator-1")
    assert "every link of dinsos made until" in done.stdout
    unknown = cli("access", "withdraw-links", "--agency", "nobody", ok=False)
    assert unknown.returncode == 2 and "unknown agency (not repeated here" in unknown.stderr


# --- one home, one configuration; times in the district's zone ----------------------------------


def test_a_second_shell_links_where_the_home_serves(cli, tmp_path, monkeypatch):
    """`init` records the home's settings; a command without the variables agrees with them."""
    monkeypatch.setenv("RUJUKAN_WEB_PORT", "8766")
    cli("init")
    monkeypatch.delenv("RUJUKAN_WEB_PORT")
    recorded = tmp_path / "var" / "settings.env"
    assert oct(recorded.stat().st_mode & 0o777) == "0o600"
    assert 'RUJUKAN_WEB_PORT="8766"' in recorded.read_text()
    link = json.loads(cli("access", "link", "--agency", "dinsos", "--json").stdout)["url"]
    assert link.startswith("http://127.0.0.1:8766/s/")

    monkeypatch.setenv("RUJUKAN_BASE_URL", "https://rujukan.example.go.id")
    cli("init")
    monkeypatch.delenv("RUJUKAN_BASE_URL")
    link = json.loads(cli("access", "link", "--agency", "dinsos", "--json").stdout)["url"]
    assert link.startswith("https://rujukan.example.go.id/s/")
    assert 'RUJUKAN_WEB_PORT="8766"' in recorded.read_text()  # kept from the first init

    monkeypatch.setenv("RUJUKAN_BASE_URL", "https://elsewhere.example")  # the environment wins
    link = json.loads(cli("access", "link", "--agency", "dinsos", "--json").stdout)["url"]
    assert link.startswith("https://elsewhere.example/s/")


def test_overdue_steps_say_how_late_and_whether_escalated_in_aligned_columns(cli):
    import re

    reference = json.loads(cli("launch", "--intake", str(EXAMPLE), "--json").stdout)["reference"]
    rows = json.loads(cli("steps", "--overdue", "--at", "2099-01-01T00:00+07:00", "--json").stdout)
    assert rows[0]["overdue_seconds"] > 0 and rows[0]["escalated"] is False
    lines = cli("steps", "--overdue", "--at", "2099-01-01T00:00+07:00").stdout.splitlines()
    assert lines[0].split() == ["REFERENCE", "STEP", "AGENCY", "STATUS", "DUE", "(WIB)",
                                "OVERDUE", "BY", "ESCALATED"]  # fmt: skip
    assert reference in lines[1] and " d " in lines[1] and lines[1].endswith("no")
    # Every column starts where its header starts.
    for header in ("STEP", "AGENCY", "DUE", "OVERDUE BY", "ESCALATED"):
        column = lines[0].index(header)
        assert lines[1][column - 2 : column] == "  " and lines[1][column] != " "
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d WIB", lines[1])


def test_referral_show_and_access_list_give_times_in_the_districts_zone(cli):
    import re

    reference = json.loads(cli("launch", "--intake", str(EXAMPLE), "--json").stdout)["reference"]
    shown = cli("referral", "show", reference).stdout
    audit = shown[shown.index("audit:") :].splitlines()[1:]
    assert audit[0].split()[:3] == ["SEQ", "AT", "(WIB)"]
    for line in audit[1:]:
        assert re.match(r"  \d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WIB  ", line), line
    assert "+00:00" not in shown  # no UTC time left, in the details either

    cli("access", "issue", "--coordinator", "coordinator-1")
    cli("access", "issue", "--agency", "dinsos", "--holder", "ani")
    cli("access", "revoke", "1")
    listed = cli("access", "list").stdout.splitlines()
    assert listed[0].split() == ["ID", "KIND", "AGENCY", "STATUS", "ISSUED", "(WIB)", "UNTIL",
                                 "(WIB)", "HOLDER"]  # fmt: skip
    status = listed[0].index("STATUS")
    assert [line[status:].split()[0] for line in listed[1:]] == ["active", "revoked"]
    assert all(line.count(" WIB") == 2 for line in listed[1:])
