"""Channels cannot reach internal hosts: every spelling of a non-global address, every scheme whose
URL names its host, at config-check time, right before each send and on every socket a send opens;
and a redirect is never followed. Real local listeners count every connection they accept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apprise
import pytest
import requests
import yaml
from sqlmodel import select
from typer.testing import CliRunner

from models.actions import launch
from models.database import transaction
from models.intake import Intake
from models.outbox import OutboxMessage, OutboxStatus
from models.settings import Settings, get_settings
from notifications.channels import (
    ALLOWED_SCHEMES,
    CheckedApprise,
    HostPolicy,
    Permit,
    RefusedConnection,
    guarded,
    usable_apprise,
    user_host_schemes,
)
from notifications.relay import deliver, relay_now
from notifications.render import Message
from tests.network import free_port
from tests.notifications.conftest import catalog_for

MESSAGE = Message("[RJK-TEST-10] uji", "teks", "teks", "<p>teks</p>")
KEY = b"test-channel-key"


# --- real listeners ------------------------------------------------------------------------------


class Listener:
    """HTTP(S) servers on several loopback addresses, one port: count connections, keep requests."""

    def __init__(
        self,
        hosts: tuple[str, ...],
        *,
        status: int = 200,
        location: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.hosts, self.status, self.location, self.tls = hosts, status, location, tls
        self.connections = 0
        self.requests: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.servers: list[ThreadingHTTPServer] = []
        self.port = self._start()

    def _start(self) -> int:
        for _ in range(50):  # the same free port on every address
            port, servers = free_port(), []
            try:
                for host in self.hosts:
                    servers.append(self._server(host, port))
            except OSError:
                for server in servers:
                    server.server_close()
                continue
            self.servers = servers
            for server in servers:
                threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
                ).start()
            return port
        raise RuntimeError("no port free on every listener address")

    def _server(self, host: str, port: int) -> ThreadingHTTPServer:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with state.lock:
                    state.requests.append((self.path, body))
                self.send_response(state.status)
                if state.location:
                    self.send_header("Location", state.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_POST  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def get_request(self):
                sock, address = super().get_request()
                with state.lock:
                    state.connections += 1  # counted before any byte is read
                if state.tls is not None:
                    sock = state.tls.wrap_socket(sock, server_side=True)
                return sock, address

            def handle_error(self, request, client_address) -> None:
                pass  # a client that hangs up or fails TLS: counted already

        return Server((host, port), Handler)

    def stop(self) -> None:
        """Stop every server."""
        for server in self.servers:
            server.shutdown()
            server.server_close()


LOOPBACKS = ("127.0.0.1", "127.0.0.2", "::1")


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A plain HTTP listener on 127.0.0.1, 127.0.0.2 and ::1 (same port), answering 200."""
    server = Listener(LOOPBACKS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server TLS context with a self-signed certificate (workflows:// is HTTPS only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in LOOPBACKS]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def tls_listener(tls_context: ssl.SSLContext) -> Iterator[Listener]:
    """An HTTPS listener on the loopback addresses, answering 200."""
    server = Listener(LOOPBACKS, tls=tls_context)
    yield server
    server.stop()


# --- the variants --------------------------------------------------------------------------------


def _hostname_on_this_network() -> list[str]:
    """This machine's own name when it resolves to a non-global address (as /etc/hosts makes it)."""
    name = socket.gethostname()
    try:
        found = {i[4][0] for i in socket.getaddrinfo(name, 80, 0, socket.SOCK_STREAM)}
    except OSError:
        return []
    return [name] if all(not ipaddress.ip_address(a.split("%")[0]).is_global for a in found) else []


# Spellings that reach this machine: decimal, hex, octal and short IPv4 forms that getaddrinfo
# reads as literals, other loopback addresses, the unspecified address, IPv6 loopback, IPv4-mapped
# and IPv4-compatible IPv6, local names, and names that resolve to loopback.
LOCAL_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "127.1",
    "0177.0.0.1",
    "0x7f.1",
    "127.0.0.2",
    "0.0.0.0",
    "0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[::]",
    "localhost",
    "LOCALHOST.",
    "rujukan.localhost",
    *_hostname_on_this_network(),
]

# Every allowed scheme whose URL names its host, as an agency's channel would write it.
SCHEME_TEMPLATES = [
    "json://{host}:{port}/hook",
    "jsons://{host}:{port}/hook?verify=no",
    "form://{host}:{port}/hook",
    "forms://{host}:{port}/hook?verify=no",
    "xml://{host}:{port}/hook",
    "xmls://{host}:{port}/hook?verify=no",
    "workflows://{host}:{port}/wf/sig?verify=no",
    "workflow://{host}:{port}/wf/sig?verify=no",
    "ntfy://{host}:{port}/topic",
    "ntfys://{host}:{port}/topic?verify=no",
    "mailto://{host}:{port}?from=rujukan@example.com&to=ppa@example.com&mode=insecure",
    "mailto://user:pw@example.com:{port}?smtp={host}&to=ppa@example.com&mode=insecure",
    "json://{host}:{port}/hook?redirect=yes",
]

# Addresses of other machines that are not on the internet: private, shared, link-local,
# unique-local, site-local, multicast, reserved, documentation, translation prefixes.
INTERNAL_ADDRESSES = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "0.1.2.3",
    "[fc00::1]",
    "[fd12:3456:789a::1]",
    "[fe80::1]",
    "[febf::1]",
    "[fec0::1]",
    "[ff02::1]",
    "[ff05::2]",
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::10.0.0.1]",
    "[64:ff9b::a00:1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b:1::a00:1]",
    "[2002:a00:1::1]",
    "[2002:7f00:1::1]",
    "[2001:db8::1]",
    "[100::1]",
    "10.0.0.1.",
    "foo.internal",
    "printer.local",
    "router.lan",
    "nas.home.arpa",
]

PUBLIC_CHANNELS = [
    "json://8.8.8.8/hook",
    "jsons://[2001:4860:4860::8888]/hook",
    "json://[64:ff9b::808:808]/hook",  # NAT64 of a public IPv4 (what DNS64 gives public names)
    "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567890",
    "ntfy://rujukan-ngo-topic",
    "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
]


def _local_variants(port: int) -> list[str]:
    return [t.format(host=h, port=port) for t in SCHEME_TEMPLATES for h in LOCAL_SPELLINGS]


def _internal_variants() -> list[str]:
    return [t.format(host=h, port=80) for t in SCHEME_TEMPLATES[:11] for h in INTERNAL_ADDRESSES]


def _goes_to_ntfy_sh(url: str) -> bool:
    service = apprise.Apprise.instantiate(url)
    return service is not None and getattr(service, "mode", None) == "cloud"


def _write_config(settings: Settings, urls: list[str], prefix: str = "v") -> dict[str, str]:
    """One channel per URL, each tagged with its own tag; returns tag -> URL."""
    tagged = {f"{prefix}{i}": url for i, url in enumerate(urls)}
    entries = [{url: [{"tag": tag}]} for tag, url in tagged.items()]
    path = settings.resolved_apprise_config
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"version": 1, "urls": entries}, sort_keys=False))
    return tagged


def _write_tagged(settings: Settings, tag: str, urls: list[str]) -> None:
    """Every URL as a channel of one tag (the agency the launched referral's message goes to)."""
    entries = [{url: [{"tag": tag}]} for url in urls]
    settings.resolved_apprise_config.parent.mkdir(parents=True, exist_ok=True)
    settings.resolved_apprise_config.write_text(yaml.safe_dump({"version": 1, "urls": entries}))


def _check(monkeypatch: pytest.MonkeyPatch, allowed: str = "") -> tuple[int, dict]:
    """Run the real `rujukan channels check --json` with this allow-list."""
    from cli.main import app

    monkeypatch.setenv("RUJUKAN_ALLOWED_WEBHOOK_HOSTS", allowed)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["channels", "check", "--json"])
    get_settings.cache_clear()
    return result.exit_code, json.loads(result.output)


def _refused_tags(report: dict) -> set[str]:
    return {p["agency"] for p in report["problems"] if p["scheme"] is not None}


# --- finding 1: which schemes are checked --------------------------------------------------------


def test_user_host_schemes_are_read_from_apprise_plugins():
    schemes = user_host_schemes()
    # json/form/xml, Power Automate workflows, self-hosted ntfy and email name their host ...
    assert {
        "json", "jsons", "form", "forms", "xml", "xmls",
        "workflow", "workflows", "ntfy", "ntfys", "mailto", "mailtos",
    } == schemes & ALLOWED_SCHEMES  # fmt: skip
    # ... Telegram, WhatsApp and Slack always call their vendor's API host.
    assert not {"tgram", "whatsapp", "slack"} & schemes
    assert len(schemes) > 50  # every Apprise plugin was read, not a list kept by hand


# --- finding 1: the config check ------------------------------------------------------------------


def test_the_channels_check_refuses_every_internal_variant_and_passes_public_ones(
    settings, monkeypatch
):
    variants = _local_variants(8080) + _internal_variants()
    tagged = _write_config(settings, variants + PUBLIC_CHANNELS)
    code, report = _check(monkeypatch)

    assert code == 1
    refused = _refused_tags(report)
    missed = [url for tag, url in tagged.items() if url in variants and tag not in refused]
    # Apprise reads a few ntfy:// spellings (127.1, [::ffff:10.0.0.1]:80...) as a topic on the
    # public ntfy.sh; those connect nowhere near the written host, so they may pass.
    assert [url for url in missed if not _goes_to_ntfy_sh(url)] == []
    assert len(missed) <= 40
    public = {tag for tag, url in tagged.items() if url in PUBLIC_CHANNELS}
    assert not public & refused, [p for p in report["problems"] if p["agency"] in public]
    assert len(variants) >= 600  # the figure quoted in docs/reliability.md


def test_the_check_names_the_address_a_spelling_reaches(settings, monkeypatch):
    _write_config(
        settings,
        ["json://2130706433:8080/h", "json://0x7f000001:8080/h", "json://[::ffff:127.0.0.1]/h"],
    )
    _, report = _check(monkeypatch)
    texts = {p["agency"]: p["problem"] for p in report["problems"] if p["scheme"]}
    assert "resolves to 127.0.0.1 (loopback)" in texts["v0"]
    assert "resolves to 127.0.0.1 (loopback)" in texts["v1"]
    assert "IPv4-mapped IPv6" in texts["v2"]
    assert all("RUJUKAN_ALLOWED_WEBHOOK_HOSTS" in t for t in texts.values())


def test_an_allowed_address_is_allowed_under_any_spelling_and_nothing_else_is(
    settings, monkeypatch
):
    same = ["json://127.0.0.1:8080/h", "json://2130706433:8080/h", "json://0x7f000001:8080/h"]
    other = ["json://127.0.0.2:8080/h", "json://[::1]:8080/h", "json://0.0.0.0:8080/h"]
    tagged = _write_config(settings, same + other)
    _, report = _check(monkeypatch, allowed="127.0.0.1")
    refused = _refused_tags(report)
    assert {t for t, u in tagged.items() if u in other} == refused

    _, report = _check(monkeypatch, allowed="127.0.0.0/8")  # a network may be listed too
    assert {t for t, u in tagged.items() if u in ["json://[::1]:8080/h", other[2]]} == (
        _refused_tags(report)
    )


# --- finding 1: right before each send ----------------------------------------------------------


def _unchecked(urls: list[str], policy: HostPolicy | None = None) -> tuple[CheckedApprise, list]:
    """Channels added without the config check, as if their names had changed answer since."""
    notifier = CheckedApprise(policy or HostPolicy(), asset=apprise.AppriseAsset())
    added = [url for url in urls if notifier.add(url, tag="dinsos")]
    return notifier, added


def test_the_send_refuses_every_local_variant_and_no_connection_is_made(listener):
    notifier, added = _unchecked(_local_variants(listener.port))

    outcome = deliver(notifier, recipient="dinsos", message=MESSAGE, key=KEY)

    assert listener.connections == 0 and listener.requests == []
    assert not outcome.delivered and not outcome.reached
    to_ntfy_sh = [url for url in added if _goes_to_ntfy_sh(url)]  # not local: see above
    assert outcome.error.count("refused via ") == len(added) - len(to_ntfy_sh) >= 150


def test_the_send_still_reaches_an_allowed_listener(listener, tls_listener):
    """The control: with the address allowed, the same listeners do receive (the test can fail)."""
    allowed = HostPolicy(networks=(ipaddress.ip_network("127.0.0.1/32"),))
    urls = [
        f"json://2130706433:{listener.port}/hook",
        f"workflows://127.0.0.1:{tls_listener.port}/wf/sig?verify=no",
    ]
    notifier, added = _unchecked(urls, allowed)
    assert len(added) == 2

    outcome = deliver(notifier, recipient="dinsos", message=MESSAGE, key=KEY)

    assert outcome.delivered, outcome.error
    assert len(listener.requests) == 1 and len(tls_listener.requests) == 1


def test_the_relay_records_a_refused_channel_as_a_channel_error(
    engine, settings, sealer, intake_data, now, listener, tls_listener
):
    """The finding's URLs through the real relay: no connection, a failed row, no crash."""
    strict = settings.model_copy(update={"allowed_webhook_hosts": ""})
    _write_tagged(
        strict,
        "polres-ppa",
        [
            f"json://2130706433:{listener.port}/",
            f"json://0x7f000001:{listener.port}/",
            f"workflows://127.0.0.1:{tls_listener.port}/wf/sig?verify=no",
        ],
    )
    with transaction(engine) as session:
        launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog_for(strict),
            sealer=sealer,
            now=now,
        )

    report = relay_now(strict, now=now)

    assert (report.sent, report.failed) == (0, 1)
    assert listener.connections == 0 and tls_listener.connections == 0
    with transaction(engine) as session:
        row = session.exec(select(OutboxMessage)).one()
    assert row.status == OutboxStatus.failed and "channels check" in row.last_error


# --- the guard on every socket of a send ---------------------------------------------------------


def test_the_guard_refuses_http_and_smtp_connections_to_local_addresses(listener):
    with guarded(Permit(HostPolicy())) as permit:
        for host in ("127.0.0.1", "127.0.0.2", "[::1]", "2130706433", "localhost"):
            with pytest.raises(requests.ConnectionError):
                requests.post(f"http://{host}:{listener.port}/x", data=b"x", timeout=3)
        for host in ("127.0.0.1", "::1"):
            with pytest.raises(RefusedConnection):
                smtplib.SMTP(host, listener.port, timeout=3)
    assert listener.connections == 0 and len(permit.refused) >= 7
    # Outside a send the guard does nothing: the same call connects.
    requests.post(f"http://127.0.0.1:{listener.port}/x", data=b"x", timeout=3)
    assert listener.connections == 1


# --- finding 2: redirects ------------------------------------------------------------------------


REDIRECT_TEMPLATES = [
    "json://127.0.0.1:{port}/hook?redirect=yes",
    "form://127.0.0.1:{port}/hook?redirect=yes",
    "xml://127.0.0.1:{port}/hook?redirect=yes",
    "ntfy://127.0.0.1:{port}/topic?redirect=yes",
    "json://127.0.0.1:{port}/hook",
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/x", "http://[::1]:{port}/x"])
def test_a_redirect_is_never_followed(settings, status, target):
    """An allowed endpoint answering 3xx to another local address: the message stops there."""
    inner = Listener(("127.0.0.2", "::1"))
    outer = Listener(("127.0.0.1",), status=status, location=target.format(port=inner.port))
    try:
        allowed = settings.model_copy(update={"allowed_webhook_hosts": "127.0.0.1"})
        tags = _write_config(allowed, [t.format(port=outer.port) for t in REDIRECT_TEMPLATES])
        notifier = usable_apprise(allowed)
        for tag in tags:
            outcome = deliver(notifier, recipient=tag, message=MESSAGE, key=KEY)
            assert not outcome.delivered
            assert f"answered HTTP {status}, a redirect" in outcome.error
        assert len(outer.requests) == len(tags)
        assert inner.connections == 0
    finally:
        inner.stop()
        outer.stop()


def test_a_redirect_over_https_is_never_followed(settings, tls_context):
    inner = Listener(("127.0.0.2",), tls=tls_context)
    outer = Listener(
        ("127.0.0.1",), status=307, location=f"https://127.0.0.2:{inner.port}/x", tls=tls_context
    )
    try:
        allowed = settings.model_copy(update={"allowed_webhook_hosts": "127.0.0.1"})
        _write_config(
            allowed, [f"workflows://127.0.0.1:{outer.port}/wf/sig?verify=no&redirect=yes"]
        )
        outcome = deliver(usable_apprise(allowed), recipient="v0", message=MESSAGE, key=KEY)
        assert not outcome.delivered and "answered HTTP 307" in outcome.error
        assert len(outer.requests) == 1 and inner.connections == 0
    finally:
        inner.stop()
        outer.stop()


def test_a_plugin_that_follows_a_redirect_is_stopped_at_the_socket(settings):
    """If a plugin ignored the no-redirect setting, the guard still refuses the next hop."""
    inner = Listener(("127.0.0.2",))
    outer = Listener(("127.0.0.1",), status=307, location=f"http://127.0.0.2:{inner.port}/x")
    try:
        allowed = settings.model_copy(update={"allowed_webhook_hosts": "127.0.0.1"})
        _write_config(allowed, [f"json://127.0.0.1:{outer.port}/hook"])
        notifier = usable_apprise(allowed)
        [service] = list(notifier.find("v0"))
        service.redirects = True  # what a plugin that always follows redirects would do

        outcome = deliver(notifier, recipient="v0", message=MESSAGE, key=KEY)

        assert not outcome.delivered
        assert "refused via json: connects to 127.0.0.2 (loopback)" in outcome.error
        assert len(outer.requests) == 1 and inner.connections == 0
    finally:
        inner.stop()
        outer.stop()


def test_the_relay_records_a_redirect_as_a_channel_error(
    engine, settings, sealer, intake_data, now
):
    inner = Listener(("127.0.0.2",))
    outer = Listener(("127.0.0.1",), status=307, location=f"http://127.0.0.2:{inner.port}/x")
    try:
        allowed = settings.model_copy(update={"allowed_webhook_hosts": "127.0.0.1"})
        _write_tagged(allowed, "polres-ppa", [f"json://127.0.0.1:{outer.port}/hook?redirect=yes"])
        with transaction(engine) as session:
            launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog_for(allowed),
                sealer=sealer,
                now=now,
            )

        report = relay_now(allowed, now=now)

        assert (report.sent, report.failed) == (0, 1)
        with transaction(engine) as session:
            row = session.exec(select(OutboxMessage)).one()
        assert row.status == OutboxStatus.failed
        assert "FAILURE via json (answered HTTP 307, a redirect" in row.last_error
        assert len(outer.requests) == 1 and inner.connections == 0
    finally:
        inner.stop()
        outer.stop()
