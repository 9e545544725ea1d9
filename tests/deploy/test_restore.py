"""The restore drill: back up the case database, lose it, restore it, and the audit chain holds.

On SQLite the backup is the online backup API's copy, restored by putting the file back; on
PostgreSQL it is `pg_dump --format=custom`, restored with `pg_restore` into a new, empty
database of the same name, exactly as docs/deploy.md tells an operator.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from models.database import engine_for
from models.referral import Person, Referral
from models.seal import Sealer
from models.settings import PROJECT_ROOT, get_settings, sqlite_file
from tests.conftest import PG_ADMIN

EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"


def _snapshot(url: str) -> tuple[list[str], list[dict]]:
    with Session(engine_for(url)) as session:
        references = sorted(r.reference for r in session.exec(select(Referral)))
        sealer = Sealer.for_settings(get_settings())
        people = [sealer.open(p.sealed) for p in session.exec(select(Person))]
    return references, people


def _lose_and_restore(url: str, dump: Path) -> None:
    """Drop the case database as a disk failure would, then restore it from `dump`."""
    engine_for(url).dispose()
    engine_for.cache_clear()
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        assert not database.exists()
        shutil.copyfile(dump, database)  # every process stopped: the copy takes the file's place
        return
    psycopg = pytest.importorskip("psycopg")
    parsed = make_url(url)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{parsed.database}"')
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "-d", plain, str(dump)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_backup_drop_restore_and_the_audit_chain_holds(
    cli, launch, database_url: str, tmp_path: Path
):
    if database_url.startswith("postgres") and shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore are not installed (apt-get install postgresql-client)")
    reference = launch(4)[-1]
    cli("step", "accept", reference, "identifikasi", "--agency", "polres-ppa")
    verified = json.loads(cli("audit", "verify", "--json").stdout)
    assert verified["ok"] is True
    anchor = verified["head"]
    before = _snapshot(database_url)

    dump = tmp_path / "backups" / "rujukan.dump"
    written = json.loads(cli("backup", str(dump), "--json").stdout)
    assert written["format"] == (
        "sqlite" if database_url.startswith("sqlite") else "pg_dump-custom"
    )
    assert dump.stat().st_size > 0 and dump.stat().st_mode & 0o777 == 0o600
    # Work done after the backup is what a restore loses: the drill shows what comes back.
    cli("step", "accept", launch(1)[0], "identifikasi", "--agency", "polres-ppa")

    _lose_and_restore(database_url, dump)

    restored = json.loads(cli("audit", "verify", "--anchor", anchor, "--json").stdout)
    assert restored == {"ok": True, "breaks": [], "head": anchor}
    assert _snapshot(database_url) == before
    steps = json.loads(cli("steps", "--json").stdout)
    assert {(s["reference"], s["status"]) for s in steps if s["reference"] == reference} == {
        (reference, "accepted")
    }
    # The restored database takes new work and the chain goes on from the restored head.
    cli("step", "complete", reference, "identifikasi", "--agency", "polres-ppa", "--outcome",
        "served")  # fmt: skip
    assert json.loads(cli("audit", "verify", "--anchor", anchor, "--json").stdout)["ok"] is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backup_refuses_clearly_when_pg_dump_cannot_connect(cli, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "RUJUKAN_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nothing_here"
    )
    refused = cli("backup", str(tmp_path / "x.dump"), ok=False)
    assert refused.returncode == 2 and "pg_dump failed" in refused.stderr, refused.stderr
