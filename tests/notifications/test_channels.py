"""Channel configs: bad ones refused naming agency and scheme (never the secret); the demo config
delivers.
"""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from models.directory import load_directory
from notifications.channels import check_channels, ensure_demo_config, usable_apprise
from notifications.mailbox import read_mailbox
from notifications.relay import deliver
from notifications.render import Message
from tests.notifications.conftest import write_channels

SECRET = "s3cr3tT0ken9"


def _problems(settings, channels):
    write_channels(settings, channels)
    return [str(p) for p in check_channels(settings, load_directory(settings.agencies_file))]


@pytest.mark.parametrize(
    ("url", "scheme", "why"),
    [
        (f"gopher://user:{SECRET}@example.org/x", "gopher", "scheme not allowed"),
        (f"rsyslog://{SECRET}@example.org", "rsyslog", "scheme not allowed"),
        (f"tgram://{SECRET}", "tgram", "could not be parsed"),
        (f"json://10.0.0.7/hook?+X-Token={SECRET}", "json", "private, loopback or reserved"),
        (f"forms://192.168.1.20/{SECRET}", "forms", "private, loopback or reserved"),
        (f"jsons://localhost/{SECRET}", "jsons", "local host name"),
        (f"json://[::1]:8080/{SECRET}", "json", "private, loopback or reserved"),
        (f"ntfy://169.254.169.254/{SECRET}", "ntfy", "private, loopback or reserved"),
    ],
)
def test_a_bad_channel_is_refused_naming_agency_and_scheme_without_the_secret(
    settings, url, scheme, why
):
    problems = _problems(settings, {"dinsos": url})
    [problem] = [p for p in problems if p.startswith("agency 'dinsos', ")]
    assert f"{scheme}:// channel" in problem and why in problem
    assert SECRET not in "\n".join(problems)


def test_allowed_webhook_hosts_lets_a_listed_private_host_through(settings):
    url = "json://10.0.0.7/hook"
    assert any("dinsos'," in p for p in _problems(settings, {"dinsos": url}))
    allowed = settings.model_copy(update={"allowed_webhook_hosts": "127.0.0.1, 10.0.0.7"})
    assert not any("dinsos'," in p for p in _problems(allowed, {"dinsos": url}))


def test_public_channels_pass_and_agencies_without_one_are_named(settings):
    problems = _problems(
        settings,
        {
            "dinsos": "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567890",
            "polres-ppa": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
            "lbh": "mailtos://user:pass@mail.example.org?to=lbh@example.org",
            "ngo": "ntfy://rujukan-ngo-topic",
            "iom": "jsons://hooks.example.org/rujukan",
        },
    )
    assert not [p for p in problems if "channel:" in p]
    assert "agency 'gugus-tugas': has no usable channel" in problems
    assert not any(p.startswith(("agency 'dinsos'", "agency 'iom'")) for p in problems)


def test_a_broken_file_is_reported_not_raised(settings):
    settings.resolved_apprise_config.write_text("urls: [unclosed")
    [first, *_] = check_channels(settings, load_directory(settings.agencies_file))
    assert "not valid YAML" in str(first)


def test_the_demo_config_covers_every_agency_delivers_locally_and_is_never_overwritten(
    settings, mailbox
):
    demo = settings.model_copy(update={"mailbox_port": mailbox.port})
    path = ensure_demo_config(demo)
    assert path == demo.resolved_apprise_config
    assert check_channels(demo, load_directory(demo.agencies_file)) == []
    assert ensure_demo_config(demo) is None

    outcome = deliver(
        usable_apprise(demo),
        recipient="gugus-tugas",
        key=b"test-channel-key",
        message=Message("[RJK-TEST-22] uji", "teks", "teks", "<p>teks</p>"),
    )

    assert outcome.delivered
    [mail] = read_mailbox(demo)
    assert mail["To"] == "gugus-tugas@rujukan.local" and mail["Subject"] == "[RJK-TEST-22] uji"

    # Untouched, it follows a new mailbox port (the old one was busy, say) ...
    moved = demo.model_copy(update={"mailbox_port": mailbox.port + 1})
    assert ensure_demo_config(moved) == path
    assert f"127.0.0.1:{mailbox.port + 1}?" in path.read_text()
    assert f"127.0.0.1:{mailbox.port}?" not in path.read_text()
    assert check_channels(moved, load_directory(moved.agencies_file)) == []
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_demo_config(moved) is None

    # ... but a config someone edited is theirs: never rewritten, whatever the port.
    edited = path.read_text().replace("# then run", "# edited by the operator; then run")
    path.write_text(edited)
    assert ensure_demo_config(demo) is None and path.read_text() == edited
    path.write_text("version: 1\nurls: []\n")
    assert ensure_demo_config(demo) is None and path.read_text() == "version: 1\nurls: []\n"


def test_the_channels_check_command_reports_problems_as_json(settings, monkeypatch):
    from cli.main import app

    write_channels(settings, {"dinsos": f"json://10.0.0.7/{SECRET}"})
    result = CliRunner().invoke(app, ["channels", "check", "--json"])
    assert result.exit_code == 1
    assert SECRET not in result.output
    data = json.loads(result.output)
    assert {"agency": "dinsos", "scheme": "json"}.items() <= data["problems"][0].items()
    assert {c["scheme"] for c in data["channels"]} == {"json"}
    assert yaml.safe_load(settings.resolved_apprise_config.read_text())  # untouched
