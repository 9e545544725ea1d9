"""The task force's report as a scheduled Prefect flow: the Markdown artifact `report-<period>`.

The artifact is made from the published report (small cells suppressed), with its charts as PNG
data: images (Prefect 3.9's UI shows them, V1 and V2 alike) and a link to the manager's page;
the case facts' tables stay out of Prefect.
The flow takes one code, `span` (month or quarter): it reports the last whole period before now.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from models.catalog import load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.report import compute_report, parse_period, previous_period, publish
from models.report_output import charts, render_markdown
from models.settings import Settings, get_settings
from models.vocabulary import DEFAULT_LOCALE

REPORT_FLOW = "task-force-report"
SPANS = ("month", "quarter")
# Monthly on the 1st and quarterly on the 2nd day of the next period, 07:00 in the district.
SCHEDULES = {"month": "0 7 1 * *", "quarter": "0 7 2 1,4,7,10 *"}


def artifact_key(period: str) -> str:
    """The artifact's key: report-2026-11, report-2026-q4 (Prefect keys are lower case)."""
    return f"report-{period.lower()}"


def manager_url(settings: Settings, period: str) -> str:
    """The report's page in the web app (signed-in managers and coordinators)."""
    return f"{settings.base_url.rstrip('/')}/manager/reports/{period}"


def write_report_artifact(
    settings: Settings, period_label: str | None = None, span: str = "month"
) -> str:
    """Compute, publish and write the artifact of a period (default: the last whole `span`)."""
    now = utcnow()
    period = (
        previous_period(span, now, settings.timezone)
        if period_label is None
        else parse_period(period_label, settings.timezone)
    )
    engine = engine_for(settings.resolved_database_url)
    with transaction(engine) as session:
        figures = compute_report(session, catalog=load_catalog(settings), period=period, now=now)
    # The case facts (form of exploitation, recruitment, place) stay out of Prefect, even as
    # counts: Prefect has no roles. The manager's page linked from the artifact has them.
    published = publish(figures, DEFAULT_LOCALE)
    published = replace(
        published, tables=[t for t in published.tables if not t.key.startswith("facts-")]
    )
    markdown = render_markdown(
        published, chart_list=charts(published), link=manager_url(settings, period.label)
    )
    key = artifact_key(period.label)
    create_markdown_artifact(
        markdown=markdown,
        key=key,
        description=f"Laporan pemantauan {period.label} (small cells suppressed)",
    )
    return key


@flow(name=REPORT_FLOW, log_prints=False)
def task_force_report(span: Literal["month", "quarter"] = "month") -> str:
    """Write the report of the last whole month or quarter as the artifact report-<period>."""
    if span not in SPANS:  # a served deployment enforces it; a direct call is checked here
        raise ValueError(f"span is one of {', '.join(SPANS)}")
    key = write_report_artifact(get_settings(), span=span)
    get_run_logger().info("wrote the artifact %s", key)
    return key
