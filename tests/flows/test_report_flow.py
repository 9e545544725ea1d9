"""The scheduled report: the flow writes the artifact report-<period> on the Prefect test server,
with its charts and without personal data; the deployments are served with a code parameter."""

from __future__ import annotations

from datetime import timedelta

from models.actions import launch
from models.catalog import load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.intake import Intake
from models.report import previous_period
from models.seal import Sealer
from models.settings import Settings
from tests.report.history import canary_intake, known_history, leaks


def test_the_flow_writes_the_report_artifact_with_charts(
    case_db: Settings, prefect_api: str, prefect_client, intake_data, monkeypatch
):
    from prefect.client.schemas.filters import ArtifactCollectionFilter

    from flows.report import artifact_key, task_force_report

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    last_month = previous_period("month", utcnow(), case_db.timezone)
    with transaction(engine_for(case_db.resolved_database_url)) as session:
        known_history(session)
        canary = launch(
            session,
            intake=Intake.model_validate(canary_intake(intake_data)),
            catalog=load_catalog(case_db),
            sealer=Sealer(case_db.resolved_secret_key()),
            now=last_month.start + timedelta(days=3),
        )
    key = task_force_report(span="month")
    assert key == artifact_key(last_month.label) == f"report-{last_month.label.lower()}"
    artifact = prefect_client.read_latest_artifacts(
        artifact_filter=ArtifactCollectionFilter(key={"any_": [key]})
    )[0]
    markdown = artifact.data
    assert markdown.count("](data:image/png;base64,") >= 3  # on-time, funnel(s), trend
    assert f"/manager/reports/{last_month.label}" in markdown
    assert "Kinerja instansi" in markdown and "| &lt;5 |" in markdown  # small cells hidden
    assert leaks(markdown, canary.reference) == []
    assert "Bentuk eksploitasi" not in markdown and "Data kasus" not in markdown  # not in Prefect


def test_the_report_deployments_take_a_code_only(settings: Settings):
    from flows.deployments import build_deployments

    served = {d.name: d for d in build_deployments(settings)}
    assert served["report-monthly"].parameters == {"span": "month"}
    assert served["report-quarterly"].parameters == {"span": "quarter"}
    assert served["report-quarterly"].schedules[0].schedule.cron == "0 7 2 1,4,7,10 *"
