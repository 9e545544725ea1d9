"""The de-identified case-level export for SIMFONI-PPA, the ministry's national recording system.

One row per referral launched in a period, in SIMFONI-PPA's public terms (docs/reporting.md has
the mapping): no name, contact, birth date, address or reference code; age in SIMFONI's age
groups, the home district (never the address), the month the case came in. Reading the sealed
person for sex, age and district is one audited act (`cases-exported`).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlmodel import Session, col, select

from models.audit import record
from models.referral import Person, Referral
from models.report import Period
from models.seal import Sealer
from models.step import Step, StepStatus
from models.vocabulary import (
    AuditAction,
    CaseSourceCode,
    ExploitationCode,
    RecruitmentCode,
    label,
)

# SIMFONI-PPA's age groups (years), as its public dashboard counts victims.
AGE_GROUPS = ((0, 5), (6, 12), (13, 17), (18, 24), (25, 44), (45, 59), (60, 200))
SEX = {"F": "Perempuan", "M": "Laki-laki", "X": "Tidak diketahui"}

# The service chain of the national SOP (Permen PPPA 8/2021), as SIMFONI-PPA names the services
# a victim received, by the pathway step that gives them.
SERVICE_OF_STEP = {
    "identifikasi": "Pengaduan",
    "identifikasi-polisi": "Pengaduan",
    "identifikasi-imigrasi": "Pengaduan",
    "penerimaan": "Pengaduan",
    "kesehatan": "Kesehatan",
    "rumah-aman": "Rehabilitasi Sosial",
    "psikososial": "Rehabilitasi Sosial",
    "perlindungan-anak": "Rehabilitasi Sosial",
    "asesmen-keluarga": "Rehabilitasi Sosial",
    "bantuan-hukum": "Bantuan Hukum",
    "perlindungan-lpsk": "Bantuan Hukum",
    "pemulangan": "Pemulangan",
    "pemulangan-daerah": "Pemulangan",
    "pemulangan-iom": "Pemulangan",
    "reintegrasi": "Reintegrasi Sosial",
    "reintegrasi-sekolah": "Reintegrasi Sosial",
    "pemantauan": "Reintegrasi Sosial",
}
SERVICES = (
    "Pengaduan",
    "Kesehatan",
    "Rehabilitasi Sosial",
    "Bantuan Hukum",
    "Pemulangan",
    "Reintegrasi Sosial",
)

COLUMNS = (
    "no",
    "bulan_lapor",
    "jenis_kelamin",
    "kelompok_usia",
    "status_usia",
    "kewarganegaraan",
    "kabupaten_asal",
    "tempat_kejadian",
    "jenis_kasus",
    "bentuk_eksploitasi",
    "sumber_kasus",
    "cara_perekrutan",
    *(f"layanan_{s.lower().replace(' ', '_')}" for s in SERVICES),
)

# A district is a short name of letters (Kabupaten Bengkulu Tengah, Kota Medan); anything else
# typed into the field (a street, a number) is not exported.
DISTRICT = re.compile(r"^[A-Za-z][A-Za-z .'-]{1,59}$")


def age_group(birth_year: int, year: int) -> tuple[str, str]:
    """SIMFONI's age group and child/adult status for a birth year, in the year of the case."""
    age = year - birth_year
    for low, high in AGE_GROUPS:
        if low <= age <= high:
            group = f"{low}+" if high >= 200 else f"{low}-{high}"
            return group, "Anak" if age < 18 else "Dewasa"
    return "Tidak diketahui", "Tidak diketahui"


def _district(value: str | None) -> str:
    if not value:
        return ""
    return (
        value.strip() if DISTRICT.fullmatch(value.strip()) and not re.search(r"\d", value) else ""
    )


def case_records(
    session: Session, *, period: Period, sealer: Sealer, actor: str, now: datetime
) -> list[dict[str, str]]:
    """One de-identified row per referral launched in `period` (the read is audited)."""
    tz = ZoneInfo(period.timezone)
    referrals = session.exec(
        select(Referral, Person)
        .join(Person, col(Person.referral_id) == Referral.id)
        .where(Referral.created_at >= period.start, Referral.created_at < period.end)
    ).all()
    served: dict[int, set[str]] = {}
    for referral_id, key in session.exec(
        select(Step.referral_id, Step.key).where(
            col(Step.referral_id).in_([r.id for r, _ in referrals] or [-1]),
            Step.status == StepStatus.completed,
        )
    ).all():
        if key in SERVICE_OF_STEP:
            served.setdefault(referral_id, set()).add(SERVICE_OF_STEP[key])
    rows = []
    for referral, person in referrals:
        facts = sealer.open(person.sealed)
        month = referral.created_at.astimezone(tz)
        group, status = age_group(int(facts["birth_year"]), month.year)
        got = served.get(referral.id or 0, set())
        rows.append(
            {
                "bulan_lapor": month.strftime("%Y-%m"),
                "jenis_kelamin": SEX.get(facts.get("sex", "X"), "Tidak diketahui"),
                "kelompok_usia": group,
                "status_usia": status,
                "kewarganegaraan": "WNI" if facts.get("nationality") == "ID" else "WNA",
                "kabupaten_asal": _district(facts.get("home_district")),
                "tempat_kejadian": referral.place or "",
                "jenis_kasus": "TPPO",
                "bentuk_eksploitasi": label(ExploitationCode, referral.exploitation, "id"),
                "sumber_kasus": label(CaseSourceCode, referral.case_source, "id"),
                "cara_perekrutan": label(RecruitmentCode, referral.recruitment, "id"),
                **{
                    f"layanan_{s.lower().replace(' ', '_')}": "Ya" if s in got else "Tidak"
                    for s in SERVICES
                },
            }
        )
    # Rows in an order that says nothing of when each case came in within the month.
    rows.sort(key=lambda r: tuple(r.values()))
    for n, row in enumerate(rows, 1):
        row["no"] = str(n)
    record(
        session,
        actor=actor,
        action=AuditAction.cases_exported,
        now=now,
        detail={"period": period.label, "rows": len(rows), "format": "simfoni"},
    )
    return [{column: row[column] for column in COLUMNS} for row in rows]


def records_csv(rows: list[dict[str, str]]) -> bytes:
    """The records as CSV (UTF-8, header row)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def records_xlsx(rows: list[dict[str, str]]) -> bytes:
    """The records as a one-sheet workbook."""
    book = Workbook()
    sheet = book.active
    sheet.title = "simfoni-ppa"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
