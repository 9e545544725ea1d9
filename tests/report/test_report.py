"""The report's figures on a generated history with known answers, on SQLite and PostgreSQL,
and small-cell suppression (primary and secondary)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.database import transaction
from models.errors import BadInput
from models.report import (
    Published,
    compute_report,
    parse_period,
    percentile,
    previous_period,
    publish,
    suppressed_cells,
)
from tests.report.history import NOW, known_history


@pytest.fixture
def published(engine, catalog) -> dict[str, Published]:
    """The November 2026 report of the known history, in English, and its Q4 report."""
    with transaction(engine) as session:
        known_history(session)
    out = {}
    for label in ("2026-11", "2026-Q4"):
        with transaction(engine) as session:
            report = compute_report(session, catalog=catalog, period=parse_period(label), now=NOW)
        out[label] = publish(report, "en")
    return out


def rows(published: Published, key: str) -> dict[str, list[str]]:
    table = published.table(key)
    found = {row[0]: row[1:] for row in table.rows}
    if table.total:
        found["Total"] = table.total[1:]
    return found


def test_agency_figures_with_known_answers(published):
    agencies = rows(published["2026-11"], "agencies")
    police = agencies["Polres Bengkulu Tengah, Unit PPA"]
    # assigned, accepted, completed, on time %, escalated, accept median/p90 (h),
    # complete median/p90 (d), open now, overdue now
    assert police == ["10", "*", "*", "75", "<5", "5.5", "9.0", "4.5", "8.0", "<5", "<5"]
    # three steps: every count under 5, and no percentage or duration over under 5 cases
    assert agencies["Dinas Sosial"][:4] == ["<5", "<5", "<5", "–"]
    # dinsos's 3 could be recomputed from the column total 19: the next smallest (lbh's 6) hides
    assert agencies["Lembaga Bantuan Hukum"][0] == "*"
    assert agencies["Total"][:4] == ["19", "13", "11", "82"]


def test_declines_pathways_funnel_outcomes_and_facts(published):
    november = published["2026-11"]
    assert rows(november, "declined")["Lembaga Bantuan Hukum"] == ["*", "<5", "0", "0", "0", "6"]
    # launched 1 November 01:00 WIB (31 October in UTC) counts in November, not October
    assert rows(november, "pathways")["Total"] == ["*", "<5", "0", "10"]
    funnel = rows(november, "funnel-tppo-dewasa")
    assert funnel["Victim identification and first statement"] == ["10", "8"]
    assert funnel["Shelter placement"] == ["<5", "<5"]
    assert funnel["Legal aid and accompaniment"] == ["6", "0"]
    outcomes = rows(november, "outcomes-tppo-dewasa")
    # served 6 hides because partly served (2) would follow from the row's total 8; the total 8
    # then hides because the shelter's 3 would follow from the column of totals
    assert outcomes["Victim identification and first statement"][:2] == ["*", "<5"]
    assert outcomes["Victim identification and first statement"][-1] == "*"
    assert rows(november, "facts-exploitation")["Labour exploitation"] == ["*"]
    assert rows(november, "facts-exploitation")["Sexual exploitation"] == ["<5"]
    assert rows(november, "facts-place")["MY"] == ["10"]
    trend = rows(november, "trend")
    assert trend["2026-10"] == ["<5", "<5"] and trend["2026-11"] == ["*", "<5"]
    assert list(trend)[-2] == "2026-12"  # months of the year up to now
    assert rows(published["2026-Q4"], "trend")["2026-Q4"] == ["11", "5"]


def test_suppression_primary_and_secondary():
    # a 2x2 table with row and column totals; the 3 hides, then one more cell in its row and
    # its column, then the totals that would give those away
    grid = [[3, 10, 13], [20, 30, 50], [23, 40, 63]]
    hidden = suppressed_cells(grid, row_total=True, column_total=True)
    assert (0, 0) in hidden
    for i in range(3):
        assert sum(1 for j in range(3) if (i, j) in hidden) != 1, f"row {i}"
        assert sum(1 for j in range(3) if (j, i) in hidden) != 1, f"column {i}"
    # zeros are shown; a table without totals only hides small counts
    assert suppressed_cells([[0, 4, 7]], row_total=False, column_total=False) == {(0, 1)}
    # a single small cell whose row has only zeros besides: its total (also small) hides with it
    assert suppressed_cells([[2, 0, 2]], row_total=True, column_total=False) == {(0, 0), (0, 2)}


def test_percentiles_and_periods():
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9
    assert percentile([5.0], 0.9) == 5
    november = parse_period("2026-11")
    assert november.start == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)  # 1 Nov 00:00 WIB
    assert parse_period("2026-Q4").end == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    assert parse_period("2026").kind == "year"
    assert previous_period("month", NOW).label == "2026-11"
    assert previous_period("quarter", NOW).label == "2026-Q3"
    assert previous_period("month", datetime(2027, 1, 5, tzinfo=UTC)).label == "2026-12"
    for wrong in ("2026-13", "Nov 2026", "2026-Q5", "26-11"):
        with pytest.raises(BadInput, match="a period is a month"):
            parse_period(wrong)
