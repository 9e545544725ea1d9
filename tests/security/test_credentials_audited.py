"""Every credential issued or withdrawn leaves exactly one audit entry, and never the token.

A sign-in token, an inbox link handed to a person, a revocation and a withdrawal of links each
name who did it, the kind, the agency (and step), and for a new credential how long it lasts.
The commands run as an operator runs them; the case database is then read as it is on disk.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from cli.access_commands import access_app
from cli.context import run as cli_run
from cli.main import app
from models.access import issue_link
from models.actions import launch
from models.audit import AuditEntry, verify_chain
from models.database import transaction
from models.errors import BadInput, NotFound
from models.intake import Intake
from models.links import verify
from models.settings import get_settings
from models.step import Step

# Every `rujukan access` command, and the audit action it must leave (None: it changes nothing).
ACCESS_COMMANDS = {
    "issue": "access-issued",
    "revoke": "access-revoked",
    "link": "link-issued",
    "withdraw-links": "links-withdrawn",
    "list": None,
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised home, shared by the module (every test counts only its own entries)."""
    path = tmp_path_factory.mktemp("credentials") / "var"
    run(path, "init")
    return path


@dataclass
class Result:
    """What a command printed and its exit status."""

    returncode: int
    stdout: str
    stderr: str


def run(home: Path, *args: str, ok: bool = True) -> Result:
    """A command through the console entry point's own code (cli.context.run), in this process:
    the environment an operator's shell gives it, its output captured."""
    env = {"RUJUKAN_HOME": str(home), "RUJUKAN_SECRET_KEY": "credentials-test-key"}
    saved = {k: v for k, v in os.environ.items() if k.startswith(("PREFECT_", "RUJUKAN_"))}
    out, err = io.StringIO(), io.StringIO()
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_run(app, list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)
        get_settings.cache_clear()
    result = Result(code, out.getvalue(), err.getvalue())
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def audit(home: Path) -> list[dict]:
    """The audit trail as the database file holds it."""
    with sqlite3.connect(home / "rujukan.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM auditentry ORDER BY seq").fetchall()
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


def new_entries(home: Path, *args: str) -> tuple[list[dict], Result]:
    before = len(audit(home))
    result = run(home, *args)
    return audit(home)[before:], result


def assert_token_nowhere(home: Path, entries: list[dict], token: str) -> None:
    """Neither the token, its signature nor its hash is in the entry; the token is in no table."""
    written = json.dumps(entries)
    for secret in (token, token.rsplit(".", 1)[-1], hashlib.sha256(token.encode()).hexdigest()):
        assert secret not in written
    assert token.encode() not in (home / "rujukan.db").read_bytes()


def test_every_access_command_is_covered_here():
    """A new command that issues or withdraws a credential must be added, and audited."""
    assert {c.name for c in access_app.registered_commands} == set(ACCESS_COMMANDS)


@pytest.mark.parametrize(
    ("args", "kind", "agency"),
    [
        (["--agency", "dinsos", "--holder", "ani", "--days", "30"], "agency", "dinsos"),
        (["--coordinator", "coordinator-1"], "coordinator", "uptd-ppa"),
    ],
)
def test_issuing_a_sign_in_token_leaves_one_entry_without_it(home, args, kind, agency):
    entries, result = new_entries(home, "access", "issue", *args, "--by", "op-1", "--json")
    issued = json.loads(result.stdout)
    assert [(e["action"], e["actor"]) for e in entries] == [("access-issued", "operator:op-1")]
    assert entries[0]["detail"] == {"grant": issued["id"], "kind": kind, "agency": agency}
    assert_token_nowhere(home, entries, issued["token"])


@pytest.mark.parametrize(
    ("args", "days", "by"),
    [
        (["--agency", "lbh", "--days", "366", "--by", "op-1"], 366, "op-1"),  # the finding
        (["--agency", "dinsos"], 7, getpass.getuser()),  # default lifetime, default operator
        (["--agency", "polres-ppa", "--days", "1", "--by", "op-2"], 1, "op-2"),
    ],
)
def test_printing_an_inbox_link_leaves_one_entry_without_it(home, args, days, by):
    entries, result = new_entries(home, "access", "link", *args, "--json")
    printed = json.loads(result.stdout)
    token = printed["url"].rsplit("/s/", 1)[1]
    assert [(e["action"], e["actor"]) for e in entries] == [("link-issued", f"operator:{by}")]
    detail = entries[0]["detail"]
    assert detail["kind"] == "inbox-link" and detail["agency"] == printed["agency"]
    assert detail["lifetime_days"] == days and detail["expires_at"] == printed["expires_at"]
    assert entries[0]["step_id"] is None
    assert_token_nowhere(home, entries, token)


def test_revoking_a_token_leaves_one_entry(home):
    issued = json.loads(run(home, "access", "issue", "--agency", "lbh", "--json").stdout)
    entries, _ = new_entries(home, "access", "revoke", str(issued["id"]), "--by", "op-3")
    assert [(e["action"], e["actor"], e["detail"]) for e in entries] == [
        (
            "access-revoked",
            "operator:op-3",
            {"grant": issued["id"], "kind": "agency", "agency": "lbh"},
        )
    ]


def test_withdrawing_links_leaves_one_entry(home):
    entries, _ = new_entries(home, "access", "withdraw-links", "--agency", "lbh", "--by", "op-4")
    assert [(e["action"], e["actor"], e["detail"]) for e in entries] == [
        ("links-withdrawn", "operator:op-4", {"agency": "lbh"})
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["access", "link", "--agency", "lbh", "--days", "367"],
        ["access", "link", "--agency", "lbh", "--days", "0"],
        ["access", "link", "--agency", "no-such-agency"],
        ["access", "issue", "--agency", "lbh", "--days", "0"],
    ],
)
def test_a_refused_credential_is_neither_printed_nor_recorded_as_issued(home, args):
    before = audit(home)
    result = run(home, *args, ok=False)
    assert result.returncode == 2 and "error:" in result.stderr
    assert "/s/" not in result.stdout and "rjk_" not in result.stdout
    assert audit(home) == before


def test_a_link_to_one_step_names_the_step_and_its_referral(
    engine, catalog, sealer, now, intake_data, settings
):
    with transaction(engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
    with transaction(engine) as session:
        step = session.exec(select(Step).where(Step.referral_id == referral.id)).first()
        token = issue_link(
            session,
            secret="test-secret-key",
            agency=step.agency,
            step_id=step.id,
            lifetime=timedelta(hours=36),
            issued_by="operator:op-5",
            now=now,
            catalog=catalog,
        )
    with transaction(engine) as session:
        entry = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert verify_chain(session) == []
    assert (entry.action, entry.actor, entry.referral_id, entry.step_id) == (
        "link-issued",
        "operator:op-5",
        referral.id,
        step.id,
    )
    assert entry.detail["kind"] == "step-link" and entry.detail["agency"] == step.agency
    assert entry.detail["lifetime_days"] == 1.5
    assert token not in json.dumps(entry.detail) and token not in entry.hash
    claim = verify("test-secret-key", token, now)
    assert (claim.agency, claim.step_id, claim.issued) == (step.agency, step.id, now)


@pytest.mark.parametrize(
    ("agency", "lifetime", "error"),
    [
        ("lbh", timedelta(0), BadInput),
        ("lbh", timedelta(days=366, seconds=1), BadInput),
        ("no-such-agency", timedelta(days=1), BadInput),
        ("other-agency", timedelta(days=1), NotFound),  # a step of another agency
    ],
)
def test_a_refused_link_is_not_recorded(
    engine, catalog, sealer, now, intake_data, settings, agency, lifetime, error
):
    with transaction(engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
        step = session.exec(select(Step).where(Step.referral_id == referral.id)).first()
    with transaction(engine) as session:
        before = len(session.exec(select(AuditEntry)).all())
    slug = next(a.slug for a in catalog.directory.agencies if a.slug != step.agency)
    with pytest.raises(error), transaction(engine) as session:
        issue_link(
            session,
            secret="test-secret-key",
            agency=slug if agency == "other-agency" else agency,
            step_id=step.id if agency == "other-agency" else None,
            lifetime=lifetime,
            issued_by="operator:op-6",
            now=now,
            catalog=catalog,
        )
    with transaction(engine) as session:
        assert len(session.exec(select(AuditEntry)).all()) == before
