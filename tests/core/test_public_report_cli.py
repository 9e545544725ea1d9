"""`rujukan reports`: list, show (audited), ask, forward and close a public report."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from models.catalog import load_catalog
from models.database import engine_for, transaction
from models.public_report import ReportChannel, file_report, validate_report
from models.seal import Sealer
from models.settings import get_settings
from tests.core.test_cli import cli  # noqa: F401 (the fixture)

CANARY = "KANARI-CLI-5521 ditahan di rumah penampungan"


def test_reports_are_listed_by_codes_and_triaged_from_the_command_line(cli):  # noqa: F811
    get_settings.cache_clear()
    settings = get_settings()
    with transaction(engine_for(settings.resolved_database_url)) as session:
        _, referral, _ = file_report(
            session, report=validate_report({"what": CANARY, "contact": "0812-5521"}),
            channel=ReportChannel.web, catalog=load_catalog(settings),
            sealer=Sealer(settings.resolved_secret_key()),
            secret=settings.resolved_secret_key(), now=datetime.now(UTC),
        )  # fmt: skip
        reference = referral.reference
    listed = cli("reports", "list", "--json").stdout
    assert CANARY not in listed
    (row,) = json.loads(listed)
    assert row["reference"] == reference and row["status"] == "received"
    assert [s["step"] for s in row["steps"]] == ["telaah#1"]
    shown = cli("reports", "show", reference, "--by", "coordinator-1").stdout
    assert CANARY in shown and "0812-5521" in shown
    cli("reports", "ask", reference, "--question", "Di mana rumahnya?", "--by", "coordinator-1")
    forwarded = cli("reports", "forward", reference, "--to", "polres-ppa", "--by", "coordinator-1")
    assert "forwarded to polres-ppa" in forwarded.stdout
    wrong = cli("reports", "close", reference, "--reason", "bored", "--by", "c-1", ok=False)
    assert wrong.returncode == 2 and "not-trafficking" in wrong.stderr
    cli("reports", "close", reference, "--reason", "handled-elsewhere", "--by", "coordinator-1")
    assert json.loads(cli("reports", "list", "--json").stdout) == []
    (closed,) = json.loads(cli("reports", "list", "--all", "--json").stdout)
    assert closed["close_reason"] == "handled-elsewhere"
    assert {s["step"]: s["status"] for s in closed["steps"]} == {
        "telaah#1": "completed",
        "verifikasi#1": "cancelled",
    }
    audit = cli("referral", "show", reference).stdout
    assert "report-viewed" in audit and "report-closed" in audit  # the opening is audited
    assert CANARY not in audit
