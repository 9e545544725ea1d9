"""`rujukan report` and `rujukan access issue --manager` as an operator runs them."""

from __future__ import annotations

import io
import zipfile

from models.settings import PROJECT_ROOT
from tests.core.test_cli import cli  # noqa: F401 (the fixture)

EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"


def test_report_in_every_format_and_the_manager_token(cli, tmp_path):  # noqa: F811
    reference = cli("launch", "--intake", str(EXAMPLE)).stdout.split()[0]
    month = cli("report", "--period", "2026-11").stdout
    assert month.startswith("# Laporan pemantauan rujukan korban TPPO")
    english = cli("report", "--period", "2026-11", "--locale", "en", "--format", "csv").stdout
    assert english.splitlines()[0] == "Period,Table,Row,Column,Value"
    refused = cli("report", "--period", "2026-11", "--format", "xlsx", ok=False)
    assert refused.returncode == 2 and "--output" in refused.stderr
    for fmt in ("html", "xlsx"):
        out = tmp_path / f"r.{fmt}"
        cli("report", "--period", "2026-Q4", "--format", fmt, "--output", str(out))
        data = out.read_bytes()
        if fmt == "xlsx":
            assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
        else:
            assert b"data:image/png;base64," in data and b"<script" not in data
    bad = cli("report", "--period", "November", ok=False)
    assert bad.returncode == 2 and "a period is a month" in bad.stderr
    cases = cli("report", "--period", "2026-11", "--cases", "--format", "csv").stdout
    assert "Siti" not in cases and reference not in cases
    markdown_cases = cli("report", "--period", "2026-11", "--cases", ok=False)
    assert "--cases writes csv or xlsx" in markdown_cases.stderr
    token = cli("access", "issue", "--manager", "sekretariat-1", "--json").stdout
    assert '"kind": "manager"' in token and '"agency": "gugus-tugas"' in token
    two = cli("access", "issue", "--manager", "a", "--coordinator", "b", ok=False)
    assert "exactly one of" in two.stderr
