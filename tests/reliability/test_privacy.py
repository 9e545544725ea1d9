"""Canary personal data through a whole served scenario, then every store searched for it.

`rujukan serve` runs on free ports with a temporary home; agencies hear through a local HTTP
receiver (one channel answers 500) and the demo mail catcher. Four people with unique canary
facts are launched (one intake, a batch of two, one through the web API), agencies act through
the API and the pages, a coordinator opens the person's record, the short-clock pathway goes
overdue and escalates, and bad input full of canary values is refused by the CLI and the API.
Then Prefect's database and logs, the case database outside the sealed columns, the outbox, the
messages received, the mailbox, every file under the home and every process's output are
searched. Zero hits.

Long form and figures: .venv/bin/pytest tests/reliability/test_privacy.py -m slow -s
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from models.settings import PROJECT_ROOT
from tests.network import free_port
from tests.polling import wait_for

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
ALL_AGENCIES = [
    "imigrasi",
    "polres-ppa",
    "uptd-ppa",
    "dinsos",
    "dinkes",
    "psikolog",
    "lbh",
    "lpsk",
    "bp3mi",
    "disnaker",
    "iom",
    "ngo",
]
FAILING = "dinkes"  # its only channel answers 500: failures are recorded
MAILED = ("polres-ppa", "dinsos", "gugus-tugas")  # these also get mail through the demo catcher


@dataclass
class Canary:
    """One person's unique canary facts."""

    index: int
    word: str = field(init=False)

    def __post_init__(self) -> None:
        self.word = f"Zqkanari{'abcdefgh'[self.index]}x"

    @property
    def name(self) -> str:
        return f"Kanari {self.word} Tesnama"

    @property
    def phone(self) -> str:
        return f"+62 899 4242 7{self.index}{self.index}3"

    @property
    def birth_year(self) -> int:
        return 1903 + self.index  # 1903..: a number no id, port or time of this run stands alone as

    @property
    def address(self) -> str:
        return f"Jalan Alamatkanari{self.index}q Nomor 77"

    @property
    def district(self) -> str:
        return f"Distrikkanari{self.index}q"

    def person(self) -> dict:
        return {
            "name": self.name,
            "sex": "F",
            "birth_year": self.birth_year,
            "nationality": "ID",
            "languages": ["id"],
            "phone": self.phone,
            "address": self.address,
            "home_district": self.district,
        }

    def needles(self) -> list[str]:
        """Every string that would betray this person (searched case-insensitively)."""
        digits = re.sub(r"\D", "", self.phone)
        return [
            self.name,
            self.word,
            self.phone,
            digits,
            digits[2:],
            self.address,
            f"Alamatkanari{self.index}q",
            self.district,
        ]


def intake(canary: Canary, pathway: str = "tppo-dewasa") -> dict:
    """An intake for the canary person on `pathway`, consent for every agency."""
    data = json.loads(json.dumps(EXAMPLE))
    data["pathway"] = pathway
    data["person"] = canary.person()
    data["consent"] = {"agencies": ALL_AGENCIES, "recorded_by": "coordinator-1"}
    return data


class Receiver:
    """A local webhook receiver keeping every request; paths under /fail answer 500."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": str(self.headers),
                        "body": body.decode("utf-8", "replace"),
                    }
                )
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def text(self) -> str:
        return "\n".join(f"{r['path']}\n{r['headers']}\n{r['body']}" for r in list(self.requests))


@dataclass
class Scenario:
    """A served home, its processes' output and what the web answered."""

    home: Path
    env: dict[str, str]
    web: str
    outputs: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    serve_out: Path | None = None

    def cli(
        self, *args: str, status: int = 0, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [RUJUKAN, *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.outputs += [result.stdout, result.stderr]
        assert result.returncode == status, (
            f"{args}: {result.returncode}\n{result.stdout}{result.stderr}"
        )
        return result

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "rujukan.db")


def _channels(receiver: Receiver, mailbox_port: int) -> str:
    from notifications.channels import demo_channel_url

    lines = ["version: 1", "urls:"]
    for slug in [*ALL_AGENCIES, "gugus-tugas"]:
        path = f"fail/{slug}" if slug == FAILING else slug
        lines += [f'  - "json://127.0.0.1:{receiver.port}/{path}":', f"      - tag: {slug}"]
        if slug in MAILED:
            lines += [f'  - "{demo_channel_url(slug, mailbox_port)}":', f"      - tag: {slug}"]
    return "\n".join(lines) + "\n"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def _step_id(scenario: Scenario, reference: str, key: str) -> int:
    with scenario.db() as db:
        (step_id,) = db.execute(
            "select s.id from step s join referral r on r.id = s.referral_id "
            "where r.reference = ? and s.key = ? order by s.id desc limit 1",
            (reference, key),
        ).fetchone()
    return step_id


def _sqlite_dump(path: Path, skip: set[tuple[str, str]] = frozenset()) -> tuple[str, dict]:
    """Every row of every table as text, leaving out the (table, column) pairs in `skip`."""
    parts, sizes = [], {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            columns = [
                c[1]
                for c in db.execute(f'pragma table_info("{table}")')
                if (table, c[1]) not in skip
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = db.execute(f'select {select} from "{table}"').fetchall()
            sizes[table] = len(rows)
            parts += [f"{table}: {row!r}" for row in rows]
    finally:
        db.close()
    return "\n".join(parts), sizes


def _mailbox_text(folder: Path) -> tuple[str, int]:
    """Every .eml file, raw and decoded (a base64 or quoted-printable body hides nothing)."""
    parts, count = [], 0
    for path in sorted(folder.glob("*.eml")):
        count += 1
        raw = path.read_bytes()
        parts.append(raw.decode("utf-8", "replace"))
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts += [f"{k}: {v}" for k, v in message.items()]
        for part in message.walk():
            if not part.is_multipart():
                parts.append(str(part.get_content()))
    return "\n".join(parts), count


def _hits(text: str, canaries: list[Canary], year: bool = True) -> list[str]:
    low = text.lower()
    found = [n for c in canaries for n in c.needles() if n.lower() in low]
    if year:
        # A year betrays only as a number of its own, not inside an id, hash or timestamp.
        found += [
            str(c.birth_year)
            for c in canaries
            if re.search(rf"(?<![0-9A-Za-z:.+-]){c.birth_year}(?![0-9A-Za-z:.-])", text)
        ]
    return found


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    """A served home with channels to a local receiver (one failing) and the demo mailbox."""
    base = tmp_path_factory.mktemp("privacy")
    home = base / "var"
    home.mkdir()
    receiver = Receiver()
    mailbox_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    env.update(
        RUJUKAN_HOME=str(home),
        RUJUKAN_SECRET_KEY="privacy-test-key",
        RUJUKAN_PREFECT_PORT=str(free_port()),
        RUJUKAN_WEB_PORT=str(web_port),
        RUJUKAN_BASE_URL=f"http://127.0.0.1:{web_port}",
        RUJUKAN_MAILBOX_PORT=str(mailbox_port),
        RUJUKAN_SWEEP_INTERVAL_SECONDS="5",
        RUJUKAN_RELAY_INTERVAL_SECONDS="1",
        RUJUKAN_RELAY_MAX_ATTEMPTS="3",
        RUJUKAN_RELAY_BACKOFF_BASE_SECONDS="1",
        RUJUKAN_RELAY_BACKOFF_CAP_SECONDS="2",
        RUJUKAN_ALLOWED_WEBHOOK_HOSTS="127.0.0.1",
    )
    (home / "channels.yaml").write_text(_channels(receiver, mailbox_port))
    result = Scenario(home=home, env=env, web=f"http://127.0.0.1:{web_port}")
    result.cli("init")
    result.serve_out = base / "serve.out"
    result.process = subprocess.Popen(
        [RUJUKAN, "serve"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=result.serve_out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            "serve to come up",
            lambda: (
                "Ctrl-C stops everything" in result.serve_out.read_text(errors="replace")
                or result.process.poll() is not None
            ),
            timeout=180,
            every=0.5,
        )
        assert result.process.poll() is None, result.serve_out.read_text()
        result.receiver = receiver  # type: ignore[attr-defined]
        yield result
    finally:
        if result.process.poll() is None:
            result.process.send_signal(signal.SIGINT)
            result.process.wait(timeout=90)
        receiver.server.shutdown()


@pytest.mark.slow
@pytest.mark.prefect
def test_canary_personal_data_reaches_no_store(scenario: Scenario, tmp_path: Path):
    started = time.monotonic()
    receiver: Receiver = scenario.receiver  # type: ignore[attr-defined]
    people = [Canary(i) for i in range(4)]
    note_canaries = ["Catatankanari Zqnotesatu", "Catatankanari Zqnotedua"]

    # --- launch: one intake, a batch of two on the short clock, one through the web API ---
    single = tmp_path / "single.json"
    single.write_text(json.dumps(intake(people[0])))
    adult = json.loads(scenario.cli("launch", "--intake", str(single), "--json").stdout)[
        "reference"
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(intake(p, "demo-singkat")) for p in people[1:3]) + "\n")
    lines = scenario.cli("launch", "--batch", str(batch), "--json").stdout.strip().splitlines()
    short = [json.loads(line)["reference"] for line in lines]

    def token(*args: str) -> str:
        return json.loads(scenario.cli("access", "issue", *args, "--json").stdout)["token"]

    coordinator = {"Authorization": f"Bearer {token('--coordinator', 'coordinator-1')}"}
    polres = {"Authorization": f"Bearer {token('--agency', 'polres-ppa', '--holder', 'ani')}"}
    dinsos = {"Authorization": f"Bearer {token('--agency', 'dinsos', '--holder', 'budi')}"}
    api = httpx.Client(base_url=scenario.web, timeout=30)

    def answer(response: httpx.Response, *status: int) -> httpx.Response:
        scenario.answers.append(response.text)
        assert response.status_code in status, response.text
        return response

    via_api = answer(
        api.post("/api/referrals", headers=coordinator, json=intake(people[3], "demo-singkat")), 201
    ).json()["reference"]

    # --- agency actions through the API: accept, complete with a note, decline with a note ---
    ident = _step_id(scenario, adult, "identifikasi")
    answer(api.post(f"/api/referrals/{adult}/steps/{ident}/accept", headers=polres, json={}), 200)
    answer(
        api.post(
            f"/api/referrals/{adult}/steps/{ident}/complete",
            headers=polres,
            json={"outcome": "served", "note": f"{note_canaries[0]}, {people[0].name}"},
        ),
        200,
    )
    shelter = _step_id(scenario, adult, "rumah-aman")
    answer(
        api.post(
            f"/api/referrals/{adult}/steps/{shelter}/decline",
            headers=dinsos,
            json={"reason": "no-capacity", "note": f"{note_canaries[1]} {people[0].address}"},
        ),
        200,
    )
    step_view = answer(api.get(f"/api/referrals/{adult}/steps/{shelter}", headers=dinsos), 200)

    # --- agency action through the pages: a signed inbox link, the step page, accept ---
    link = scenario.cli("access", "link", "--agency", "polres-ppa").stdout
    path = re.search(r"/s/[\w.~-]+", link).group(0)
    pages = httpx.Client(base_url=scenario.web, timeout=30, follow_redirects=True)
    step_id = _step_id(scenario, short[0], "identifikasi")
    pages.get(path).raise_for_status()
    page = pages.get(f"/referrals/{short[0]}/steps/{step_id}")
    page.raise_for_status()
    pages.post(
        f"/referrals/{short[0]}/steps/{step_id}/accept",
        data={"csrf": _csrf(page.text), "officer": "ani"},
    ).raise_for_status()

    # --- a coordinator views the person: through the API and the page ---
    person = answer(api.get(f"/api/referrals/{adult}/person", headers=coordinator), 200).json()
    assert person["facts"]["name"] == people[0].name  # the canary is really there, sealed
    office = httpx.Client(base_url=scenario.web, timeout=30, follow_redirects=True)
    signin = office.get("/signin")
    office.post(
        "/signin",
        data={"csrf": _csrf(signin.text), "token": coordinator["Authorization"].split()[1]},
    ).raise_for_status()
    person_page = office.get(f"/referrals/{via_api}/person")
    person_page.raise_for_status()
    assert people[3].name in person_page.text

    # --- validation errors carrying canary values: CLI and web API ---
    refused_from = len(scenario.answers)
    bad = intake(Canary(4))
    bad["person"]["name"] = f"{people[1].name}\u0007"
    bad["person"]["birth_year"] = people[2].name
    bad["person"]["phone"] = f"call {people[1].phone} or {people[2].address}"
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    scenario.cli("launch", "--intake", str(bad_file), status=2)
    scenario.cli("launch", "--intake", "-", stdin=json.dumps(bad) + "}", status=2)
    bad_batch = tmp_path / "bad.jsonl"
    bad_batch.write_text(json.dumps(intake(people[1])) + "\n" + json.dumps(bad) + "\n")
    scenario.cli("launch", "--batch", str(bad_batch), status=2)
    scenario.cli("referral", "show", people[0].name, status=2)
    answer(api.post("/api/referrals", headers=coordinator, json=bad), 400)
    answer(
        api.post(
            "/api/referrals",
            headers=coordinator,
            json={**intake(people[2]), "victim": people[2].name},
        ),
        400,
    )
    answer(
        api.post(
            f"/api/referrals/{adult}/steps/{shelter}/decline",
            headers=dinsos,
            json={"reason": "no-capacity", "note": f"{people[0].name}\u202e"},
        ),
        400,
    )
    answer(
        api.post(
            f"/api/referrals/{adult}/steps/{shelter}/decline",
            headers=dinsos,
            json={"reason": people[0].name},
        ),
        400,
        409,
    )
    answer(
        api.post(
            f"/api/referrals/{adult}/steps/{shelter}/decline",
            headers=dinsos,
            content=f'{{"reason": "{people[0].name}"',
        ),
        400,
    )
    link_token = {"Authorization": f"Bearer {path.removeprefix('/s/')}"}
    other = _step_id(scenario, short[1], "identifikasi")
    answer(
        api.post(
            f"/api/referrals/{short[1]}/steps/{other}/accept",
            headers=link_token,
            json={"officer": f"{people[3].name}\u0007"},
        ),
        400,
    )
    refused = scenario.answers[refused_from:]
    for text in refused:
        assert not _hits(text, people), text

    # --- the sweep: the short clock goes overdue, then escalates; the failing channel fails ---
    def counted() -> dict:
        with scenario.db() as db:
            return dict(
                db.execute(
                    "select event || ':' || status, count(*) from outbox group by 1"
                ).fetchall()
            )

    def escalated_and_failed() -> dict | None:
        counts = counted()
        escalated = sum(v for k, v in counts.items() if k.startswith("escalated:"))
        failed = sum(v for k, v in counts.items() if k.endswith((":failed", ":dead")))
        return counts if escalated >= 3 and failed >= 1 else None

    counts = wait_for("escalations and a recorded failure", escalated_and_failed, timeout=240)
    scenario.cli("sweep", "--json")
    scenario.cli("outbox", "--json")
    scenario.cli("referral", "show", adult, "--json")
    scenario.cli("steps", "--overdue", "--json")
    scenario.cli("audit", "verify")
    wait_for(
        "the failing channel's messages to be dead",
        lambda: any(k.endswith(":dead") for k in counted()),
        timeout=60,
    )
    counts = counted()
    assert any(r["path"].startswith("/fail") for r in receiver.requests)
    assert any(short[1] in r["body"] for r in receiver.requests)  # it reached the receiver
    assert step_view.json()["reference"] == adult

    # --- stop serve, then search every store ---
    scenario.process.send_signal(signal.SIGINT)
    assert scenario.process.wait(timeout=90) == 0
    scenario.outputs.append(scenario.serve_out.read_text(errors="replace"))
    home = scenario.home
    sealed = {("person", "sealed"), ("step_note", "sealed")}
    prefect_db, prefect_tables = _sqlite_dump(home / "prefect" / "prefect.db")
    case_db, case_tables = _sqlite_dump(home / "rujukan.db", sealed)
    outbox, _ = _sqlite_dump(home / "rujukan.db")
    outbox = "\n".join(line for line in outbox.splitlines() if line.startswith("outbox:"))
    sealed_text = "\n".join(
        f"{table}.{column}: {value}"
        for table, column in sorted(sealed)
        for (value,) in scenario.db().execute(f'select "{column}" from "{table}"')
    )
    mailbox, mails = _mailbox_text(home / "mailbox")
    logs = "\n".join(
        p.read_text(errors="replace") for p in sorted((home / "logs").rglob("*")) if p.is_file()
    )
    every_file = [p for p in home.rglob("*") if p.is_file()]
    raw = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in every_file)
    stores = {
        "prefect database": prefect_db,
        "prefect server and runner logs": logs,
        "case database outside the sealed columns": case_db,
        "sealed columns (as stored)": sealed_text,
        "outbox": outbox,
        "messages received by the HTTP receiver": receiver.text(),
        "mailbox files": mailbox,
        "process output (serve and every CLI call)": "\n".join(scenario.outputs),
        "web answers to refused input": "\n".join(refused),
    }
    # Positive controls: each store holds what it should, so an empty search proves something.
    assert adult in prefect_db and short[0] in prefect_db and via_api in prefect_db
    assert adult in case_db and "person-viewed" in case_db
    assert "'escalated'" in outbox and short[1] in receiver.text() and mails > 0
    assert len(sealed_text.splitlines()) >= 4 + 2
    hits = {name: _hits(text, people + [Canary(4)]) for name, text in stores.items()}
    hits["every file under RUJUKAN_HOME (raw bytes, text canaries)"] = _hits(
        raw, people, year=False
    )
    for name, text in stores.items():
        hits[name] += [n for n in note_canaries if n.lower() in text.lower()]
    hits["every file under RUJUKAN_HOME (raw bytes, text canaries)"] += [
        n for n in note_canaries if n.lower() in raw.lower()
    ]

    needles = sum(len(c.needles()) + 1 for c in people) + len(note_canaries)
    print(
        f"\ncanary test: {len(people)} people x 5 facts + {len(note_canaries)} notes "
        f"({needles} search strings), {len(hits)} stores searched: "
        f"Prefect tables {len(prefect_tables)} ({sum(prefect_tables.values())} rows), case tables "
        f"{len(case_tables)} ({sum(case_tables.values())} rows), outbox {counts}, "
        f"{len(receiver.requests)} webhook requests, {mails} mails, {len(every_file)} files, "
        f"{len(scenario.outputs) // 2} CLI calls + serve; hits: "
        f"{sum(len(h) for h in hits.values())}; {time.monotonic() - started:.0f} s"
    )
    assert hits == {name: [] for name in hits}


def test_a_wrong_or_lost_key_is_a_clear_error_never_plain_text(
    settings, engine, catalog, sealer, intake_data, now, tmp_path
):
    """Sealed with one key, opened with another (or with none): SealError, nothing shown."""
    from datetime import timedelta

    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from models.access import GrantKind, issue_grant
    from models.actions import launch
    from models.database import transaction
    from models.errors import SealError
    from models.intake import Intake
    from models.seal import Sealer, ensure_secret_key
    from web.app import create_app

    canary = Canary(5)
    intake_data["person"] = canary.person()
    with transaction(engine) as session:
        reference = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        ).reference
        _, token = issue_grant(
            session,
            kind=GrantKind.coordinator,
            agency="uptd-ppa",
            holder="coordinator-1",
            issued_by="operator:test",
            now=now,
            catalog=catalog,
            lifetime=timedelta(days=1),
        )
    url = str(engine.url)

    def person_view(secret: str | None) -> httpx.Response:
        changed = settings.model_copy(
            update={
                "database_url": url,
                "secret_key": SecretStr(secret) if secret is not None else None,
            }
        )
        with TestClient(create_app(changed, clock=lambda: now)) as client:
            return client.get(
                f"/api/referrals/{reference}/person", headers={"Authorization": f"Bearer {token}"}
            )

    assert person_view("test-secret-key").json()["facts"]["name"] == canary.name  # the right key
    refused = person_view("another-key")
    assert refused.status_code == 400 and refused.json()["error"] == "SealError"
    assert "RUJUKAN_SECRET_KEY is not the key it was sealed with" in refused.json()["message"]
    assert not _hits(refused.text, [canary])
    # No key at all (RUJUKAN_SECRET_KEY unset, the key file lost): nothing starts, and no new
    # key is made up that would seal new records while the old ones stay locked.
    with pytest.raises(SealError, match="no secret key"):
        person_view(None)
    lost = settings.model_copy(update={"database_url": url, "secret_key": None})
    with pytest.raises(SealError, match="holds sealed personal data but .*secret.key is missing"):
        ensure_secret_key(lost, engine)
    assert not (settings.home / "secret.key").exists()
    with pytest.raises(SealError, match="empty"):
        Sealer("")

    # The CLI with an empty key: a one-line error, exit 1, nothing written.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    env.update(RUJUKAN_HOME=str(settings.home), RUJUKAN_DATABASE_URL=url, RUJUKAN_SECRET_KEY="")
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(intake_data))
    result = subprocess.run(
        [RUJUKAN, "launch", "--intake", str(path)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: RUJUKAN_SECRET_KEY is empty")
    assert "Traceback" not in result.stderr and not _hits(result.stdout + result.stderr, [canary])
    with engine.connect() as conn:  # the refused launch wrote nothing
        assert conn.exec_driver_sql("select count(*) from referral").scalar_one() == 1
