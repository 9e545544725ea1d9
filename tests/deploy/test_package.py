"""The built wheel, installed into a fresh virtualenv outside the checkout, runs on its own.

The wheel is built from the checkout and installed with `--no-deps` into a new virtualenv in a
temporary folder; that virtualenv sees the test environment's installed dependencies through a
`.pth` line (the dependencies were installed once already, and the machine has no network to
spare), but not the checkout: the test checks that `models`, `web` and the data folders are the
installed copies. Then, with the working folder elsewhere, `rujukan init` creates a home from the
shipped pathways, directory and migrations, and `rujukan serve --demo` comes up: Prefect, the
served flows, the demo referrals and the web inbox's pages (templates and static files).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from models.settings import PROJECT_ROOT
from tests.network import free_port

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, **kwargs)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel of this checkout installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), "."],
        cwd=PROJECT_ROOT,
    )
    (wheel,) = wheels.glob("rujukan-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    _run([*pip, "install", "--no-deps", "-q", str(wheel)])
    # The dependencies, already installed for the tests: appended after the venv's own packages.
    # A .pth line adds its folder only, so the checkout's editable-install hook is not loaded.
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    env.pop("PYTHONPATH", None)
    env.update(RUJUKAN_HOME=str(home))
    return env


def test_the_installed_wheel_carries_its_data(installed: Path, tmp_path: Path) -> None:
    """The packages and data come from the installed wheel, not from the checkout."""
    probe = (
        "import models, web, models.database as d, models.settings as s\n"
        "print(models.__file__); print(s.DATA_ROOT); print(d.MIGRATIONS)\n"
        "print(sorted(p.name for p in (s.DATA_ROOT / 'pathways').glob('*.yaml')))\n"
        "print((s.DATA_ROOT / 'templates' / 'web').is_dir(), "
        "(d.MIGRATIONS / 'versions').is_dir())\n"
        "import web.app as a; print((a.STATIC / 'site.css').is_file())"
    )
    out = _run([str(installed / "python"), "-c", probe], cwd=tmp_path).stdout.splitlines()
    venv = installed.parent
    assert all(Path(line).is_relative_to(venv) for line in out[:3]), out
    assert not any(str(PROJECT_ROOT) in line for line in out[:3]), out
    assert out[2].endswith("models/migrations")
    assert "tppo-dewasa.yaml" in out[3]
    assert out[4:] == ["True True", "True"]


def test_init_and_serve_demo_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    """`rujukan init` then `rujukan serve --demo`, started in a folder with nothing of ours."""
    rujukan = str(installed / "rujukan")
    env = _environment(tmp_path / "home")
    init = _run([rujukan, "init", "--json"], cwd=tmp_path, env=env)
    result = json.loads(init.stdout)
    assert "tppo-dewasa" in result["pathways"] and result["agencies"] > 0, result
    assert result["secret_key_written"], result  # a new home gets its own key

    prefect_port, web_port = free_port(), free_port()
    env.update(
        RUJUKAN_PREFECT_PORT=str(prefect_port),
        RUJUKAN_WEB_PORT=str(web_port),
        RUJUKAN_MAILBOX_PORT=str(free_port()),
    )
    out = tmp_path / "serve.out"
    with out.open("wb") as handle:
        serve = subprocess.Popen(
            [rujukan, "serve", "--demo"],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 150
        while "Ctrl-C stops everything" not in out.read_text(errors="replace"):
            assert serve.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        text = out.read_text()
        assert "demo referrals:" in text, text
        base = f"http://127.0.0.1:{web_port}"
        page = httpx.get(f"{base}/", timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text, page.text[:500]
        css = httpx.get(f"{base}/static/site.css", timeout=10)
        assert css.status_code == 200 and len(css.text) > 100
        flows = httpx.get(f"http://127.0.0.1:{prefect_port}/api/health", timeout=10)
        assert flows.status_code == 200
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=90) == 0, out.read_text()
