"""The benchmark suite keeps working: its smoke run (tiny sizes, no serve) writes a figure for
every row of the performance table, with numbers wherever the smoke run measures the row and a
reason wherever it does not. Whether targets are met is the full run's business."""

import json
import subprocess
import sys
import time

import pytest

from models.settings import PROJECT_ROOT

MEASURED_IN_SMOKE = {1, 3, 4, 5, 6}  # rows 2, 7 and 8 need serve or a Prefect server


@pytest.mark.slow
def test_smoke_run_writes_every_row(tmp_path):
    out = tmp_path / "results.json"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"
    assert {"cores", "ram_gib", "python", "sqlite", "git_commit"} <= set(results["machine"])
    figures = results["figures"]
    assert {f["row"] for f in figures} == set(range(1, 9))
    for f in figures:
        assert f["what"] and f["target"] is not None
        if f["row"] in MEASURED_IN_SMOKE:
            assert isinstance(f["figure"], int | float), f
            assert f["unit"], f
            if f["baseline_what"]:
                assert isinstance(f["baseline"], int | float) and f["baseline"] > 0, f
                assert isinstance(f["ratio"], int | float), f
        else:
            assert f["figure"] is None and f["notes"], f  # not measured, and says why
    assert "| # | what | figure | baseline | ratio | target | met? |" in done.stdout
    assert took < 240
