"""A mass rescue on real email: every agency told by digest, and a command that never waits on a
dead mail server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from cli.context import run as cli_run
from cli.main import app
from models.database import engine_for
from models.outbox import OutboxMessage, OutboxStatus
from models.settings import PROJECT_ROOT, get_settings
from notifications.mailbox import read_mailbox, start_mailbox
from tests.network import free_port
from tests.notifications.conftest import mailto, write_channels

EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
# Three pathways, three first agencies: police (adults), the child-protection unit (children),
# immigration (foreigners): a mass rescue tells each of them at once.
FIRST_AGENCY = {"tppo-dewasa": "polres-ppa", "tppo-anak": "uptd-ppa", "tppo-wna": "imigrasi"}
SLOW_CHANNEL_PAUSE = 5.5  # Apprise's pace for email: one message per channel per 5.5 s


def _batch(folder: Path, count: int) -> Path:
    """A JSON Lines batch of `count` intakes spread over the three pathways."""
    lines = []
    for n in range(count):
        pathway = list(FIRST_AGENCY)[n % 3]
        intake = json.loads(json.dumps(EXAMPLE))
        intake["pathway"] = pathway
        if pathway == "tppo-wna":
            intake["person"]["nationality"] = "MY"
        if pathway == "tppo-anak":
            intake["person"]["birth_year"] = 2012
        intake["consent"] = {"override": {"by": "coordinator-1", "reason": "mass rescue"}}
        lines.append(json.dumps(intake))
    path = folder / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str) -> int:
    get_settings.cache_clear()
    code = 0
    try:
        cli_run(app, list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        get_settings.cache_clear()
    return code


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    """A fresh home whose email goes to 127.0.0.1 (a local relay, allowed by the operator)."""
    monkeypatch.setenv("RUJUKAN_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("RUJUKAN_SECRET_KEY", "digest-test-key")
    monkeypatch.setenv("RUJUKAN_ALLOWED_WEBHOOK_HOSTS", "127.0.0.1")
    monkeypatch.delenv("RUJUKAN_DATABASE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert _cli("init") == 0
    return tmp_path


def _rows(settings) -> dict[str, int]:
    with Session(engine_for(settings.resolved_database_url)) as session:
        return dict(
            session.exec(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        )


def _per_recipient(settings) -> dict[str, int]:
    with Session(engine_for(settings.resolved_database_url)) as session:
        return dict(
            session.exec(
                select(OutboxMessage.recipient, func.count()).group_by(OutboxMessage.recipient)
            ).all()
        )


def test_a_300_referral_batch_reaches_every_agency_as_digests(cli_home, capsys):
    settings = get_settings()
    mailbox = start_mailbox(settings, port=free_port())
    write_channels(settings, {slug: mailto(mailbox, slug) for slug in FIRST_AGENCY.values()})
    assert _cli("launch", "--batch", str(_batch(cli_home, 300)), "--json") == 0
    captured = capsys.readouterr()
    mailbox.stop()
    assert len(captured.out.splitlines()) == 300
    # every first step of every referral is one outbox row (a foreigner's pathway starts at
    # immigration and the police at once); the command sent them all within its budget, as
    # one email per agency
    expected = _per_recipient(settings)
    total = sum(expected.values())
    assert set(expected) == set(FIRST_AGENCY.values()) and total > 300
    assert f"messages: {total} sent in 3 sends" in captured.err, captured.err
    assert _rows(settings) == {OutboxStatus.sent: total}
    mails = {m["To"].split("@")[0]: m for m in read_mailbox(settings)}
    assert sorted(mails) == sorted(expected) and len(read_mailbox(settings)) == 3
    for agency, mail in mails.items():
        assert mail["Subject"].startswith(f"[Rujukan] {expected[agency]} tugas baru untuk")
        body = mail.get_body(("plain",)).get_content()
        assert len(re.findall(r"RJK-[0-9A-Z]{4}-[0-9A-Z]{2}", body)) == 50  # listed one by one
        more = expected[agency] - 50
        assert f"Dan {more} lainnya: semuanya ada di kotak masuk." in body
        assert "/s/" in body  # one signed link to the agency's inbox (and one per listed step)
        assert "Siti" not in body and "Contoh" not in body  # no personal data, as in one message


def test_launch_with_the_mail_server_down_returns_and_says_what_waits(cli_home, capsys):
    settings = get_settings()
    dead = free_port()  # nothing listens here: every send fails
    write_channels(
        settings,
        {
            slug: f"mailto://127.0.0.1:{dead}?from=r@rujukan.local&to={slug}@rujukan.local"
            "&mode=insecure"
            for slug in FIRST_AGENCY.values()
        },
    )
    started = time.monotonic()
    assert _cli("launch", "--batch", str(_batch(cli_home, 100))) == 0
    took = time.monotonic() - started
    err = capsys.readouterr().err
    # One failed send per agency (not one per referral), side by side: the command returns in
    # about the time of one refused connection, not 100 of them.
    assert took < 30, f"launch --batch took {took:.1f} s with the mail server down"
    total = sum(_per_recipient(settings).values())
    assert f"messages: 0 sent in 3 sends, {total} failed" in err, err
    assert _rows(settings) == {OutboxStatus.failed: total}  # each row keeps its own retry
    assert "no `rujukan serve` runs for this home" in err  # and nothing would retry them
