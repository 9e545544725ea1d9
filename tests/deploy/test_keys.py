"""Rotating the secret key: old records and links stay valid, everything new uses the new key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models.audit import AuditEntry
from models.clock import utcnow
from models.database import engine_for, transaction
from models.errors import SealError
from models.keyring import key_id
from models.links import verify
from models.note import StepNote, add_note
from models.referral import Consent, Person, Referral
from models.seal import Sealer
from models.settings import PROJECT_ROOT, get_settings
from models.step import Step
from web.app import create_app

EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"


def _sealed_values(url: str) -> list[str]:
    with Session(engine_for(url)) as session:
        return [
            value
            for table, attribute in ((Person, "sealed"), (Consent, "reason_sealed"))
            for row in session.exec(select(table))
            if (value := getattr(row, attribute)) is not None
        ] + [note.sealed for note in session.exec(select(StepNote))]


def _link_token(cli) -> str:
    url = json.loads(cli("access", "link", "--agency", "dinsos", "--json").stdout)["url"]
    return url.rsplit("/s/", 1)[1]


def _opens_link(token: str) -> bool:
    """True if the web inbox, built from the current settings, takes the link."""
    get_settings.cache_clear()
    with TestClient(create_app(get_settings()), follow_redirects=False) as client:
        response = client.get(f"/s/{token}")
    return response.status_code == 303 and response.headers["location"] == "/inbox"


def test_rotation_keeps_old_records_and_links_and_reseal_moves_them(cli, launch, database_url: str):
    home = Path(get_settings().home)
    reference = launch(2)[-1]
    _add_note(database_url, reference)
    old_key = (home / "secret.key").read_text()
    old_token = _link_token(cli)
    before = _sealed_values(database_url)
    assert len(before) >= 3  # two people and a sealed note at least

    rotated = json.loads(cli("keys", "rotate", "--json").stdout)
    new_key = (home / "secret.key").read_text()
    assert new_key != old_key and rotated["key"] == key_id(new_key)
    assert (home / "previous.keys").read_text().splitlines() == [old_key]
    assert (home / "previous.keys").stat().st_mode & 0o777 == 0o600

    # Old records open with the new key plus the old one, not with the new key alone.
    settings = get_settings()
    both = Sealer.for_settings(settings)
    assert all(both.open(value) for value in before)
    with pytest.raises(SealError):
        Sealer(new_key).open(before[0])
    # A link signed before the rotation still opens the inbox, and so does a new one; a link
    # signed with the new key fails for a process that still has only the old key.
    assert _opens_link(old_token)
    new_token = _link_token(cli)
    assert _opens_link(new_token)
    verify(new_key, new_token, now=_now())
    with pytest.raises(Exception, match="not valid"):
        verify(old_key, new_token, now=_now())

    # New records are sealed with the new key.
    cli("launch", "--intake", str(EXAMPLE))
    after_launch = _sealed_values(database_url)
    fresh = [value for value in after_launch if value not in before]
    assert fresh and all(Sealer(new_key).open(value) for value in fresh)

    resealed = json.loads(cli("keys", "reseal", "--json").stdout)
    assert resealed["resealed"] == len(before)
    assert all(Sealer(new_key).open(value) for value in _sealed_values(database_url))
    assert json.loads(cli("keys", "reseal", "--json").stdout)["resealed"] == 0  # repeatable

    with Session(engine_for(database_url)) as session:
        actions = [entry.action for entry in session.exec(select(AuditEntry))]
        details = [json.dumps(entry.detail) for entry in session.exec(select(AuditEntry))]
    assert actions.count("key-rotated") == 1 and actions.count("data-resealed") == 2
    assert not any(old_key in d or new_key in d for d in details)  # ids only, never a key
    assert json.loads(cli("audit", "verify", "--json").stdout)["ok"] is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rotate_then_reseal_in_one_command_and_again(cli, database_url: str):
    home = Path(get_settings().home)
    cli("launch", "--intake", str(EXAMPLE))
    first = (home / "secret.key").read_text()
    cli("keys", "rotate", "--reseal")
    second = (home / "secret.key").read_text()
    cli("keys", "rotate", "--reseal")
    third = (home / "secret.key").read_text()
    assert (home / "previous.keys").read_text().splitlines() == [second, first]
    assert all(Sealer(third).open(value) for value in _sealed_values(database_url))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_key_from_the_environment_is_the_operators_to_rotate(cli, monkeypatch, database_url):
    monkeypatch.setenv("RUJUKAN_SECRET_KEY", "environment-key-one")
    cli("launch", "--intake", str(EXAMPLE))
    refused = cli("keys", "rotate", ok=False)
    assert refused.returncode != 0 and "RUJUKAN_PREVIOUS_SECRET_KEYS" in refused.stderr
    # The operator's way: the new key in RUJUKAN_SECRET_KEY, the old one in the previous keys.
    monkeypatch.setenv("RUJUKAN_SECRET_KEY", "environment-key-two")
    monkeypatch.setenv("RUJUKAN_PREVIOUS_SECRET_KEYS", "environment-key-one")
    assert json.loads(cli("keys", "reseal", "--json").stdout)["resealed"] == 1
    monkeypatch.delenv("RUJUKAN_PREVIOUS_SECRET_KEYS")
    assert all(Sealer("environment-key-two").open(v) for v in _sealed_values(database_url))


def _now():
    return utcnow()


def _add_note(url: str, reference: str) -> None:
    """A sealed note on the first step, as the web inbox adds one."""
    with transaction(engine_for(url)) as session:
        referral = session.exec(select(Referral).where(Referral.reference == reference)).one()
        step = session.exec(select(Step).where(Step.referral_id == referral.id)).first()
        add_note(
            session, referral_id=referral.id, step_id=step.id, author="agency:polres-ppa",
            action="note", text="Catatan rahasia", sealer=Sealer.for_settings(get_settings()),
            now=utcnow(),
        )  # fmt: skip
