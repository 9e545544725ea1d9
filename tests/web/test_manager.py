"""The manager's role and pages: read only, late steps by agency, no personal data."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

from models.access import GrantKind
from models.database import transaction
from models.report import parse_period
from models.simfoni import case_records, records_csv, records_xlsx
from models.sweep import sweep
from tests.report.history import canary_intake, known_history, leaks
from tests.web.test_pages import csrf_of


def sign_in(client, world, kind: GrantKind, agency: str, holder: str) -> None:
    token = world.grant(kind, agency, holder)
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})


def test_manager_sees_late_steps_by_agency_and_acts_on_nothing(client, world, intake_data):
    referral = world.launch(intake_data)
    world.clock.advance(days=2)
    with transaction(world.engine) as session:
        sweep(session, catalog=world.catalog, now=world.clock.now)
    sign_in(client, world, GrantKind.manager, "gugus-tugas", "sekretariat-1")
    assert client.get("/").headers["location"] == "/manager"
    page = client.get("/manager")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Terlambat dan dieskalasi sekarang" in text and "Polres Bengkulu Tengah" in text
    assert f'href="/referrals/{referral.reference}#step-' in text  # the steps-only timeline
    assert "terlambat 1 hari" in text and "Sejak" in text
    assert "Siti" not in text and "<script" not in text
    step = world.steps(referral)["identifikasi"]
    timeline = client.get(f"/referrals/{referral.reference}")
    assert timeline.status_code == 200 and "Identifikasi" in timeline.text
    assert "/person" not in timeline.text and "<form" not in timeline.text.split("</header>")[1]
    # no step page, no person's facts, no action, no intake, no inbox
    assert client.get(f"/referrals/{referral.reference}/person").status_code == 403
    opened = client.get(f"/referrals/{referral.reference}/steps/{step.id}")
    assert opened.headers["location"].startswith(f"/referrals/{referral.reference}")
    csrf = csrf_of(client.get("/manager").text)
    accept = client.post(
        f"/referrals/{referral.reference}/steps/{step.id}/accept", data={"csrf": csrf}
    )
    assert accept.status_code == 403 and world.step(step.id).status == "ready"
    assert client.get("/coordinator/intake").status_code == 403
    assert client.get("/inbox").headers["location"] == "/manager"
    assert world.audit("refused")  # every refusal is audited


def test_an_agency_may_not_open_the_managers_pages(client, world):
    sign_in(client, world, GrantKind.agency, "dinsos", "ani")
    assert client.get("/manager").status_code == 403
    assert client.get("/manager/reports/2026-11").status_code == 403
    assert client.get("/manager/reports/2026-11/download/csv").status_code == 403


def test_no_canary_data_or_reference_code_in_any_report_output(client, world, intake_data):
    with transaction(world.engine) as session:
        known_history(session)
    world.clock.now = world.clock.now.replace(day=1) - timedelta(days=20)  # 11 November
    canary = world.launch(canary_intake(intake_data))
    world.clock.now += timedelta(days=26)
    sign_in(client, world, GrantKind.manager, "gugus-tugas", "sekretariat-1")
    report = client.get("/manager/reports/2026-11")
    assert report.status_code == 200
    assert "data:image/png;base64," in report.text and "<script" not in report.text
    assert "Dipaksa bekerja di penipuan daring" in report.text  # the canary's facts, as counts
    assert leaks(report.text, canary.reference) == []
    for fmt in ("md", "html", "csv", "xlsx"):
        got = client.get(f"/manager/reports/2026-11/download/{fmt}")
        assert got.status_code == 200, fmt
        assert leaks(_text(got.content, fmt), canary.reference) == [], fmt
    assert client.get("/manager/reports/2026-11/download/pdf").status_code == 404
    manager_page = client.get("/manager").text.split("Laporan bulan lalu")[1]
    assert leaks(manager_page, canary.reference) == []
    with transaction(world.engine) as session:
        rows = case_records(
            session,
            period=parse_period("2026-11"),
            sealer=world.sealer,
            actor="operator:test",
            now=world.clock.now,
        )
    ours = [r for r in rows if r["bentuk_eksploitasi"] == "Dipaksa bekerja di penipuan daring"]
    assert ours[0]["kelompok_usia"] == "25-44" and ours[0]["kabupaten_asal"] == "Kabupaten Seluma"
    for data, fmt in ((records_csv(rows), "csv"), (records_xlsx(rows), "xlsx")):
        assert leaks(_text(data, fmt), canary.reference) == [], fmt
    assert world.audit("cases-exported")[-1].detail["rows"] == len(rows)


def _text(data: bytes, fmt: str) -> str:
    if fmt != "xlsx":
        return data.decode()
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return "".join(
            book.read(name).decode() for name in book.namelist() if name.endswith(".xml")
        )
