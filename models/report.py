"""The task force's periodic report: figures from the case database, small cells suppressed.

`compute_report` reads the case database (SQL aggregates; durations are fetched as pairs of
times and their median and 90th percentile taken here, the same on SQLite and PostgreSQL) into
tables of raw numbers. `publish` is the one way out of a report: it suppresses small cells and
turns every number into text, and every output (Markdown, HTML, CSV, XLSX, charts, the Prefect
artifact, the manager's page) is made from what it returns, never from the raw tables.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, col, select

from models.catalog import Catalog
from models.errors import BadInput
from models.referral import Referral, ReferralStatus
from models.step import OPEN, Step, StepStatus
from models.vocabulary import (
    LABELS,
    CaseSourceCode,
    DeclineCode,
    ExploitationCode,
    OutcomeCode,
    RecruitmentCode,
    Words,
)

SMALL = 5  # a count from 1 to SMALL-1 is never shown (GBV information-sharing protocols)
HIDDEN = "<5"  # a small count
ALSO_HIDDEN = "*"  # a count hidden so that a small one cannot be worked out from a total
NO_MEASURE = "–"  # a percentage or duration over fewer than SMALL cases

Label = Words | str


def text(label: Label, locale: str) -> str:
    """A label in `locale` (agency names and codes without words are plain strings)."""
    return label.text(locale) if isinstance(label, Words) else label


# --- periods --------------------------------------------------------------------------------------

PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?P<month>\d{2})|-Q(?P<quarter>[1-4]))?$")


@dataclass(frozen=True)
class Period:
    """A month (2026-11), a quarter (2026-Q4) or a year (2026) in the district's time zone."""

    label: str
    kind: str  # month, quarter, year
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    timezone: str

    def parts(self, now: datetime | None = None) -> list[Period]:
        """The periods of its year for the trend: quarters for a quarter, else months.

        Periods that have not started by `now` are left out.
        """
        year = int(self.label[:4])
        labels = (
            [f"{year}-Q{q}" for q in range(1, 5)]
            if self.kind == "quarter"
            else [f"{year}-{m:02d}" for m in range(1, 13)]
        )
        periods = [parse_period(label, self.timezone) for label in labels]
        return [p for p in periods if now is None or p.start <= now]


def parse_period(label: str, timezone: str = "Asia/Jakarta") -> Period:
    """The period named `label`: YYYY-MM, YYYY-Qn or YYYY."""
    match = PERIOD.fullmatch(label.strip())
    if match is None or (match["month"] and not 1 <= int(match["month"]) <= 12):
        raise BadInput("a period is a month (2026-11), a quarter (2026-Q4) or a year (2026)")
    year = int(match["year"])
    if match["month"]:
        kind, first, months = "month", int(match["month"]), 1
    elif match["quarter"]:
        kind, first, months = "quarter", 3 * int(match["quarter"]) - 2, 3
    else:
        kind, first, months = "year", 1, 12
    tz = ZoneInfo(timezone)
    start = datetime(year, first, 1, tzinfo=tz)
    last = first + months
    end = datetime(year + (last - 1) // 12, (last - 1) % 12 + 1, 1, tzinfo=tz)
    return Period(label.strip(), kind, start.astimezone(UTC), end.astimezone(UTC), timezone)


def previous_period(kind: str, now: datetime, timezone: str = "Asia/Jakarta") -> Period:
    """The last whole month or quarter before `now` (for the scheduled report)."""
    local = now.astimezone(ZoneInfo(timezone))
    if kind == "month":
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        return parse_period(f"{year}-{month:02d}", timezone)
    if kind == "quarter":
        quarter = (local.month - 1) // 3
        year, quarter = (local.year, quarter) if quarter else (local.year - 1, 4)
        return parse_period(f"{year}-Q{quarter}", timezone)
    raise BadInput("the scheduled report is monthly (month) or quarterly (quarter)")


# --- the raw tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """A percentage or a duration over `n` cases (hidden below SMALL cases)."""

    value: float | None
    n: int
    unit: str  # "%", "h" (hours) or "d" (days)


Cell = int | Measure


@dataclass
class Row:
    """A labelled row of cells."""

    label: Label
    cells: list[Cell]


@dataclass
class Table:
    """A table of counts and measures.

    With `total`, that row is the sum of the rows in every count column; with `row_total`, the
    last column is the sum of the row's other count columns. These sums are what secondary
    suppression protects.
    """

    key: str
    title: Words
    columns: list[Label]
    rows: list[Row]
    total: Row | None = None
    row_total: bool = False
    note: Words | None = None


@dataclass
class Report:
    """The raw figures of one period (never rendered as they are: see `publish`)."""

    period: Period
    made_at: datetime
    tables: list[Table]
    pathways: list[str] = field(default_factory=list)


T = {
    "agencies": Words(id="Kinerja instansi", en="Agencies"),
    "agencies_note": Words(
        id="Tugas yang diberikan (siap) dalam periode ini. Tepat waktu: selesai sebelum batas "
        "waktu (termasuk perpanjangan yang disetujui). Terbuka dan terlambat: saat laporan dibuat.",
        en="Steps given (made ready) in the period. On time: completed by the deadline (with any "
        "approved extension). Open and overdue: when the report was made.",
    ),
    "agency": Words(id="Instansi", en="Agency"),
    "assigned": Words(id="Diberikan", en="Assigned"),
    "accepted": Words(id="Diterima", en="Accepted"),
    "completed": Words(id="Selesai", en="Completed"),
    "on_time": Words(id="Tepat waktu (%)", en="On time (%)"),
    "escalated": Words(id="Dieskalasi", en="Escalated"),
    "accept_median": Words(id="Median waktu terima (jam)", en="Median time to accept (h)"),
    "accept_p90": Words(id="P90 waktu terima (jam)", en="P90 time to accept (h)"),
    "complete_median": Words(id="Median waktu selesai (hari)", en="Median time to complete (d)"),
    "complete_p90": Words(id="P90 waktu selesai (hari)", en="P90 time to complete (d)"),
    "open_now": Words(id="Terbuka sekarang", en="Open now"),
    "overdue_now": Words(id="Terlambat sekarang", en="Overdue now"),
    "total": Words(id="Jumlah", en="Total"),
    "declined": Words(id="Penolakan menurut alasan", en="Declined, by reason"),
    "pathways": Words(id="Rujukan menurut alur layanan", en="Referrals by pathway"),
    "pathways_note": Words(
        id="Rujukan yang dimulai dalam periode ini, menurut statusnya saat laporan dibuat.",
        en="Referrals launched in the period, by their status when the report was made.",
    ),
    "pathway": Words(id="Alur layanan", en="Pathway"),
    "launched": Words(id="Dimulai", en="Launched"),
    "active": Words(id="Berjalan", en="Active"),
    "cancelled": Words(id="Dibatalkan", en="Cancelled"),
    "funnel": Words(id="Sejauh mana rujukan berjalan", en="How far referrals got"),
    "funnel_note": Words(
        id="Jumlah rujukan (dimulai dalam periode ini) yang mencapai dan menyelesaikan tiap tahap.",
        en="Referrals launched in the period that reached and completed each step.",
    ),
    "step": Words(id="Tahap", en="Step"),
    "reached": Words(id="Mencapai", en="Reached"),
    "outcomes": Words(id="Hasil layanan per tahap", en="Outcomes by step"),
    "facts": Words(id="Data kasus", en="Case facts"),
    "not_given": Words(id="Tidak diisi", en="Not given"),
    "count": Words(id="Jumlah rujukan", en="Referrals"),
    "exploitation": Words(id="Bentuk eksploitasi", en="Form of exploitation"),
    "source": Words(id="Asal kasus", en="How the case came in"),
    "recruitment": Words(id="Cara perekrutan", en="Recruitment channel"),
    "place": Words(id="Tempat kejadian (negara/provinsi)", en="Where it happened"),
    "trend": Words(id="Tren dalam tahun ini", en="Trend over the year"),
    "trend_note": Words(
        id="Rujukan dimulai dan tugas terlambat (batas waktu jatuh dalam periode, diselesaikan "
        "sesudahnya atau masih terbuka).",
        en="Referrals launched, and overdue steps (due in the period, closed after their deadline "
        "or still open past it).",
    ),
    "period": Words(id="Periode", en="Period"),
    "overdue": Words(id="Tugas terlambat", en="Overdue steps"),
}

FACTS: dict[str, type[StrEnum] | None] = {
    "exploitation": ExploitationCode,
    "case_source": CaseSourceCode,
    "recruitment": RecruitmentCode,
    "place": None,
}
FACT_TITLES = {"case_source": "source"}


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the least value with `share` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _median(values: list[float], unit: str) -> Measure:
    return Measure(statistics.median(values) if values else None, len(values), unit)


def _p90(values: list[float], unit: str) -> Measure:
    return Measure(percentile(values, 0.9) if values else None, len(values), unit)


def _share(part: int, whole: int) -> Measure:
    return Measure(100.0 * part / whole if whole else None, whole, "%")


def _in(column, period: Period):
    return and_(column >= period.start, column < period.end)


def _hours(session: Session, later, earlier):
    """The hours between two time columns, computed by the database (parsing a million times in
    Python would cost more than the whole query)."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 24.0
    return func.extract("epoch", later - earlier) / 3600.0


def compute_report(session: Session, *, catalog: Catalog, period: Period, now: datetime) -> Report:
    """The figures of `period` from the case database, as of `now`."""
    tables = _agency_tables(session, catalog, period, now)
    pathway_tables, pathway_ids = _pathway_tables(session, catalog, period)
    tables += pathway_tables
    tables += _fact_tables(session, period)
    tables.append(_trend_table(session, period, now))
    return Report(period=period, made_at=now, tables=tables, pathways=pathway_ids)


def _agency_name(catalog: Catalog, slug: str) -> str:
    return catalog.agency(slug).name if slug in catalog.directory else slug


def _agency_tables(
    session: Session, catalog: Catalog, period: Period, now: datetime
) -> list[Table]:
    completed = Step.status == StepStatus.completed
    on_time = and_(completed, Step.closed_at <= Step.due_at)
    given = _in(Step.ready_at, period)
    counts = session.exec(
        select(
            Step.agency,
            func.count(),
            func.count(Step.accepted_at),
            func.sum(case((completed, 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
            func.sum(case((col(Step.escalated), 1), else_=0)),
        )
        .where(given)
        .group_by(Step.agency)
    ).all()
    now_rows = session.exec(
        select(
            Step.agency,
            func.count(),
            func.sum(case((Step.due_at < now, 1), else_=0)),
        )
        .where(col(Step.status).in_(OPEN))
        .group_by(Step.agency)
    ).all()
    hours_to_accept = _hours(session, Step.accepted_at, Step.ready_at)
    hours_to_close = _hours(session, Step.closed_at, Step.ready_at)
    times = session.exec(
        select(Step.agency, hours_to_accept, case((completed, hours_to_close))).where(
            given, col(Step.accepted_at).is_not(None)
        )
    ).all()
    declined = session.exec(
        select(Step.agency, Step.decline_reason, func.count())
        .where(given, col(Step.decline_reason).is_not(None))
        .group_by(Step.agency, Step.decline_reason)
    ).all()

    to_accept: dict[str, list[float]] = defaultdict(list)
    to_complete: dict[str, list[float]] = defaultdict(list)
    for agency, accept_hours, close_hours in times:
        to_accept[agency].append(float(accept_hours))
        if close_hours is not None:
            to_complete[agency].append(float(close_hours) / 24)
    by_agency = {row[0]: [int(v or 0) for v in row[1:]] for row in counts}
    open_now = {row[0]: (int(row[1]), int(row[2] or 0)) for row in now_rows}
    slugs = sorted(set(by_agency) | set(open_now), key=lambda s: _agency_name(catalog, s).lower())

    def cells(numbers: list[int], accept: list[float], complete: list[float], opened) -> list[Cell]:
        assigned, accepted_n, completed_n, on_time_n, escalated = numbers
        return [
            assigned,
            accepted_n,
            completed_n,
            _share(on_time_n, completed_n),
            escalated,
            _median(accept, "h"),
            _p90(accept, "h"),
            _median(complete, "d"),
            _p90(complete, "d"),
            opened[0],
            opened[1],
        ]

    rows = [
        Row(
            _agency_name(catalog, slug),
            cells(
                by_agency.get(slug, [0] * 5),
                to_accept[slug],
                to_complete[slug],
                open_now.get(slug, (0, 0)),
            ),
        )
        for slug in slugs
    ]
    sums = [sum(by_agency.get(s, [0] * 5)[i] for s in slugs) for i in range(5)]
    everyone = (sum(o[0] for o in open_now.values()), sum(o[1] for o in open_now.values()))
    total = Row(
        T["total"],
        cells(
            sums,
            [v for s in slugs for v in to_accept[s]],
            [v for s in slugs for v in to_complete[s]],
            everyone,
        ),
    )
    columns = [
        "assigned", "accepted", "completed", "on_time", "escalated", "accept_median",
        "accept_p90", "complete_median", "complete_p90", "open_now", "overdue_now",
    ]  # fmt: skip
    agencies = Table(
        "agencies", T["agencies"], [T[c] for c in columns], rows, total, note=T["agencies_note"]
    )

    reasons = list(DeclineCode)
    grid: dict[str, dict[str, int]] = defaultdict(dict)
    for agency, reason, n in declined:
        grid[agency][reason] = int(n)
    decline_rows = []
    for slug in sorted(grid, key=lambda s: _agency_name(catalog, s).lower()):
        counts_of = [grid[slug].get(r.value, 0) for r in reasons]
        extra = sum(n for r, n in grid[slug].items() if r not in set(reasons))
        counts_of[-1] += extra  # a reason older than the vocabulary counts as "other"
        decline_rows.append(Row(_agency_name(catalog, slug), [*counts_of, sum(counts_of)]))
    decline_total = Row(
        T["total"], [sum(r.cells[i] for r in decline_rows) for i in range(len(reasons) + 1)]
    )  # type: ignore[misc]
    declines = Table(
        "declined",
        T["declined"],
        [*(LABELS[DeclineCode][r] for r in reasons), T["total"]],
        decline_rows,
        decline_total,
        row_total=True,
    )
    return [agencies, declines]


def _pathway_tables(
    session: Session, catalog: Catalog, period: Period
) -> tuple[list[Table], list[str]]:
    launched = _in(Referral.created_at, period)
    statuses = session.exec(
        select(Referral.pathway_id, Referral.status, func.count())
        .where(launched)
        .group_by(Referral.pathway_id, Referral.status)
    ).all()
    by_pathway: dict[str, dict[str, int]] = defaultdict(dict)
    for pathway_id, status, n in statuses:
        by_pathway[pathway_id][str(status)] = int(n)
    order = [ReferralStatus.active, ReferralStatus.completed, ReferralStatus.cancelled]

    def title(pathway_id: str) -> Label:
        known = catalog.pathways.get(pathway_id)
        return known.title if known else pathway_id

    ids = sorted(by_pathway)
    rows = []
    for pathway_id in ids:
        counts = [by_pathway[pathway_id].get(s.value, 0) for s in order]
        rows.append(Row(title(pathway_id), [*counts, sum(counts)]))
    total = Row(T["total"], [sum(r.cells[i] for r in rows) for i in range(4)])  # type: ignore[misc]
    tables = [
        Table(
            "pathways",
            T["pathways"],
            [T["active"], T["completed"], T["cancelled"], T["launched"]],
            rows,
            total,
            row_total=True,
            note=T["pathways_note"],
        )
    ]

    joined = and_(Step.referral_id == Referral.id, launched)
    reached = session.exec(
        select(
            Referral.pathway_id,
            Step.key,
            func.count(func.distinct(case((col(Step.ready_at).is_not(None), Step.referral_id)))),
            func.count(
                func.distinct(case((Step.status == StepStatus.completed, Step.referral_id)))
            ),
        )
        .where(joined)
        .group_by(Referral.pathway_id, Step.key)
    ).all()
    outcomes = session.exec(
        select(Referral.pathway_id, Step.key, Step.outcome, func.count())
        .where(joined, Step.status == StepStatus.completed)
        .group_by(Referral.pathway_id, Step.key, Step.outcome)
    ).all()
    funnel: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for pathway_id, key, reached_n, completed_n in reached:
        funnel[pathway_id][key] = (int(reached_n), int(completed_n))
    ends: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for pathway_id, key, outcome, n in outcomes:
        ends[pathway_id][key][outcome or ""] = int(n)

    codes = list(OutcomeCode)
    for pathway_id in ids:
        known = catalog.pathways.get(pathway_id)
        keys = [s.key for s in known.steps] if known else []
        keys += sorted(k for k in funnel[pathway_id] if k not in keys)

        def step_title(key: str, known=known) -> Label:
            if known is not None and any(s.key == key for s in known.steps):
                return known.step(key).title
            return key

        heading = text(title(pathway_id), "id"), text(title(pathway_id), "en")
        tables.append(
            Table(
                f"funnel-{pathway_id}",
                Words(id=f"{T['funnel'].id}: {heading[0]}", en=f"{T['funnel'].en}: {heading[1]}"),
                [T["reached"], T["completed"]],
                [Row(step_title(k), list(funnel[pathway_id].get(k, (0, 0)))) for k in keys],
                note=T["funnel_note"],
            )
        )
        outcome_rows = []
        for key in keys:
            got = ends[pathway_id].get(key, {})
            counts = [got.get(c.value, 0) for c in codes]
            counts[-1] += sum(n for o, n in got.items() if o not in {c.value for c in codes})
            outcome_rows.append(Row(step_title(key), [*counts, sum(counts)]))
        tables.append(
            Table(
                f"outcomes-{pathway_id}",
                Words(
                    id=f"{T['outcomes'].id}: {heading[0]}", en=f"{T['outcomes'].en}: {heading[1]}"
                ),
                [*(LABELS[OutcomeCode][c] for c in codes), T["total"]],
                outcome_rows,
                Row(
                    T["total"],
                    [sum(r.cells[i] for r in outcome_rows) for i in range(len(codes) + 1)],  # type: ignore[misc]
                ),
                row_total=True,
            )
        )
    return tables, ids


def _fact_tables(session: Session, period: Period) -> list[Table]:
    tables = []
    for column, kind in FACTS.items():
        attribute = getattr(Referral, column)
        found = session.exec(
            select(attribute, func.count())
            .where(_in(Referral.created_at, period))
            .group_by(attribute)
        ).all()
        counts = {value: int(n) for value, n in found}
        rows: list[Row] = []
        if kind is not None:
            known = {m.value for m in kind}
            for member in kind:
                rows.append(Row(LABELS[kind][member], [counts.get(member.value, 0)]))
            # A code older than the vocabulary counts as "other" (every fact kind has it).
            stray = sum(n for v, n in counts.items() if v is not None and v not in known)
            rows[list(kind).index(kind("other"))].cells[0] += stray  # type: ignore[operator]
        else:
            rows += [Row(v, [n]) for v, n in sorted(counts.items(), key=lambda x: str(x[0])) if v]
        rows.append(Row(T["not_given"], [counts.get(None, 0)]))
        title = T[FACT_TITLES.get(column, column)]  # exploitation, source, recruitment, place
        tables.append(
            Table(
                f"facts-{column.replace('_', '-')}",
                Words(id=f"{T['facts'].id}: {title.id}", en=f"{T['facts'].en}: {title.en}"),
                [T["count"]],
                rows,
                Row(T["total"], [sum(r.cells[0] for r in rows)]),  # type: ignore[misc]
            )
        )
    return tables


def _trend_table(session: Session, period: Period, now: datetime) -> Table:
    rows = []
    for part in period.parts(now):
        launched = session.exec(select(func.count()).where(_in(Referral.created_at, part))).one()
        late = session.exec(
            select(func.count()).where(
                _in(Step.due_at, part),
                Step.due_at < now,
                col(Step.status).not_in([StepStatus.pending, StepStatus.skipped]),
                or_(col(Step.closed_at).is_(None), Step.closed_at > Step.due_at),
            )
        ).one()
        rows.append(Row(part.label, [int(launched), int(late)]))
    total = Row(T["total"], [sum(r.cells[i] for r in rows) for i in range(2)])  # type: ignore[misc]
    return Table(
        "trend", T["trend"], [T["launched"], T["overdue"]], rows, total, note=T["trend_note"]
    )


# --- publishing: the one place small cells are suppressed -----------------------------------------


@dataclass
class PublishedTable:
    """A table as every output shows it: text cells, and chart values (None where hidden)."""

    key: str
    title: str
    note: str
    columns: list[str]  # the label column's heading first
    rows: list[list[str]]  # label first, then the cells as text
    values: list[list[float | None]]  # the numbers behind the shown cells; None if hidden
    total: list[str] | None = None


@dataclass
class Published:
    """A report ready to show: nothing in it can reveal a count from 1 to 4."""

    period: str
    made_at: datetime
    locale: str
    tables: list[PublishedTable]
    pathways: list[str]

    def table(self, key: str) -> PublishedTable:
        """The table with this key."""
        return next(t for t in self.tables if t.key == key)


def suppressed_cells(
    grid: list[list[int | None]], *, row_total: bool, column_total: bool
) -> set[tuple[int, int]]:
    """The cells of a count grid to hide: every count from 1 to 4, and enough others that none
    of them can be worked out from a row's or a column's total.

    `grid` holds counts (None for a cell that is not a count); with `row_total` the last column
    is the sum of the others in its row, with `column_total` the last row the sum of the rows.
    """
    hidden = {
        (i, j)
        for i, row in enumerate(grid)
        for j, v in enumerate(row)
        if v is not None and 0 < v < SMALL
    }
    lines: list[list[tuple[int, int]]] = []
    height, width = len(grid), len(grid[0]) if grid else 0
    counted = [j for j in range(width) if any(row[j] is not None for row in grid)]
    if row_total:
        lines += [[(i, j) for j in counted] for i in range(height)]
    if column_total:
        lines += [[(i, j) for i in range(height)] for j in counted]
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(1 for cell in line if cell in hidden) != 1:
                continue
            # One hidden entry in a line with its total: hide the smallest other non-zero one
            # (its total last), so that the line's equation has two unknowns.
            *parts, line_total = line
            candidates = sorted(
                (c for c in parts if c not in hidden and grid[c[0]][c[1]]),
                key=lambda c: grid[c[0]][c[1]],  # type: ignore[arg-type,return-value]
            )
            if not candidates and line_total not in hidden:
                candidates = [line_total]
            if not candidates:
                candidates = [c for c in parts if c not in hidden]
            if candidates:
                hidden.add(candidates[0])
                changed = True
    return hidden


def _measure_text(measure: Measure, locale: str) -> tuple[str, float | None]:
    if measure.value is None or measure.n < SMALL:
        return NO_MEASURE, None
    value = round(measure.value, 0 if measure.unit == "%" else 1)
    shown = f"{value:.0f}" if measure.unit == "%" else f"{value:.1f}"
    return (shown.replace(".", ",") if locale == "id" else shown), value


def publish(report: Report, locale: str) -> Published:
    """The report as every output shows it, small cells suppressed (the only way out)."""
    tables = []
    for table in report.tables:
        body = table.rows + ([table.total] if table.total else [])
        grid = [[c if isinstance(c, int) else None for c in row.cells] for row in body]
        hidden = suppressed_cells(
            grid, row_total=table.row_total, column_total=table.total is not None
        )
        primary = {(i, j) for i, r in enumerate(grid) for j, v in enumerate(r) if v and v < SMALL}
        shown_rows, values = [], []
        for i, row in enumerate(body):
            texts, numbers = [text(row.label, locale)], []
            for j, cell in enumerate(row.cells):
                if isinstance(cell, Measure):
                    shown, number = _measure_text(cell, locale)
                elif (i, j) in hidden:
                    shown, number = (HIDDEN if (i, j) in primary else ALSO_HIDDEN), None
                else:
                    shown, number = str(cell), float(cell)
                texts.append(shown)
                numbers.append(number)
            shown_rows.append(texts)
            values.append(numbers)
        total = shown_rows.pop() if table.total else None
        if table.total:
            values.pop()
        tables.append(
            PublishedTable(
                key=table.key,
                title=table.title.text(locale),
                note=table.note.text(locale) if table.note else "",
                columns=[text(_first_heading(table), locale)]
                + [text(c, locale) for c in table.columns],
                rows=shown_rows,
                values=values,
                total=total,
            )
        )
    return Published(report.period.label, report.made_at, locale, tables, report.pathways)


def _first_heading(table: Table) -> Label:
    if table.key.startswith(("agencies", "declined")):
        return T["agency"]
    if table.key == "pathways":
        return T["pathway"]
    if table.key.startswith(("funnel", "outcomes")):
        return T["step"]
    if table.key == "trend":
        return T["period"]
    column = table.key.removeprefix("facts-").replace("-", "_")
    return T[FACT_TITLES.get(column, column)]


def rows_of(published: Published) -> Iterable[tuple[str, list[str]]]:
    """Every table's rows with the table's title (for flat exports such as CSV)."""
    for table in published.tables:
        for row in table.rows + ([table.total] if table.total else []):
            yield table.title, row
