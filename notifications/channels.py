"""Agency channels: the Apprise YAML config, tagged by agency slug, and its validation."""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apprise
import yaml
from apprise.config.base import ConfigBase

from models.directory import Directory, load_directory
from models.settings import Settings

# Schemes an agency channel may use; anything else is refused (json://, form:// and xml:// can
# reach internal hosts, and most of Apprise's 100+ services were never reviewed for this data).
ALLOWED_SCHEMES = frozenset(
    {
        "mailto",
        "mailtos",  # email
        "tgram",  # Telegram
        "whatsapp",  # WhatsApp Business Cloud API
        "slack",
        "msteams",
        "workflow",
        "workflows",  # Microsoft Teams (incoming webhook / Power Automate)
        "ntfy",
        "ntfys",
        "json",
        "jsons",
        "form",
        "forms",
        "xml",
        "xmls",  # webhooks
    }
)
# Schemes whose host is chosen by whoever writes the config: a way into the internal network.
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls", "ntfy", "ntfys"})
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")

DEMO_SENDER = "rujukan@rujukan.local"


def quiet_apprise_logger() -> None:
    """Keep Apprise's DEBUG and INFO records (plugins log message bodies there) out of every log."""
    log = logging.getLogger("apprise")
    if log.level == logging.NOTSET or log.level < logging.WARNING:
        log.setLevel(logging.WARNING)
    if not any(isinstance(f, _NoBodies) for f in log.filters):
        log.addFilter(_NoBodies())
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        # Without a handler of its own, Python's last-resort handler prints warnings to stderr.
        log.addHandler(logging.NullHandler())


class _NoBodies(logging.Filter):
    """Drop Apprise records below WARNING even if someone lowers the logger's level later."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


quiet_apprise_logger()


@dataclass
class Channel:
    """One channel of the config: its position, tags, scheme, the loaded service and any problem."""

    entry: int  # 1-based position in the config's `urls:` list
    tags: frozenset[str]
    scheme: str
    service: Any | None = field(default=None, repr=False)  # an Apprise plugin instance
    problem: str | None = None

    @property
    def usable(self) -> bool:
        """Loaded and allowed: the relay may send through it."""
        return self.service is not None and self.problem is None


@dataclass(frozen=True)
class Problem:
    """A channel configuration problem, naming the agency and the scheme, never a secret."""

    agency: str
    scheme: str | None
    text: str

    def __str__(self) -> str:
        where = f"agency '{self.agency}'" + (f", {self.scheme}:// channel" if self.scheme else "")
        return f"{where}: {self.text}"


def allowed_hosts(settings: Settings) -> set[str]:
    """The hosts listed in RUJUKAN_ALLOWED_WEBHOOK_HOSTS, lower-cased."""
    return {
        h.strip().lower().strip("[]")
        for h in settings.allowed_webhook_hosts.split(",")
        if h.strip()
    }


def host_problem(host: str | None, allowed: set[str]) -> str | None:
    """Why a webhook host may not be used (private, loopback, local name), or None."""
    if not host:
        return "has no host"
    name = host.strip().lower().strip("[]").rstrip(".")
    if name in allowed:
        return None
    if name == "localhost" or name.endswith(LOCAL_SUFFIXES):
        return "points at a local host name; list it in RUJUKAN_ALLOWED_WEBHOOK_HOSTS if intended"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None  # a public name; DNS is not consulted here (see the README)
    if not address.is_global:
        return (
            "points at a private, loopback or reserved address; list it in "
            "RUJUKAN_ALLOWED_WEBHOOK_HOSTS if intended"
        )
    return None


def _entry_parts(entry: object, global_tags: set[str]) -> tuple[str | None, list[set[str]]]:
    """The scheme of a raw `urls:` entry and the tag set of each service it defines."""
    url: object = entry
    tokens: object = None
    if isinstance(entry, dict):
        url, tokens = next(
            ((k, v) for k, v in entry.items() if isinstance(k, str) and "://" in k), (None, None)
        )
    scheme = url.split("://", 1)[0].lower() if isinstance(url, str) and "://" in url else None
    blocks = tokens if isinstance(tokens, list) else [tokens]
    tag_sets = []
    for block in blocks:
        tags = set(global_tags)
        if isinstance(block, dict):
            raw = block.get("tag", block.get("tags"))
            if isinstance(raw, str):
                tags |= {t.strip() for t in raw.replace(",", " ").split() if t.strip()}
            elif isinstance(raw, list):
                tags |= {str(t).strip() for t in raw if str(t).strip()}
        tag_sets.append(tags)
    return scheme, tag_sets


def read_channels(settings: Settings) -> tuple[list[Channel], list[str]]:
    """Every channel of the Apprise config with its problem, and problems of the file as a whole."""
    path = settings.resolved_apprise_config
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], [
            f"{path}: channel config not found (run `rujukan init`, or set RUJUKAN_APPRISE_CONFIG)"
        ]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return [], [f"{path}: not valid YAML ({exc.__class__.__name__})"]
    if not isinstance(raw, dict) or not isinstance(raw.get("urls"), list):
        return [], [f"{path}: expected an Apprise YAML config with `version: 1` and a `urls:` list"]
    file_problems = []
    if raw.get("include"):
        file_problems.append(f"{path}: `include:` is not followed; list every channel in this file")
    global_raw = raw.get("tag", raw.get("tags"))
    global_tags = (
        set(global_raw.replace(",", " ").split()) if isinstance(global_raw, str) else set()
    )
    allowed = allowed_hosts(settings)
    channels: list[Channel] = []
    for number, entry in enumerate(raw["urls"], start=1):
        scheme, tag_sets = _entry_parts(entry, global_tags)
        if scheme is not None and scheme not in ALLOWED_SCHEMES:
            for tags in tag_sets:
                channels.append(_checked(Channel(number, frozenset(tags), scheme), allowed))
            continue
        services = _load_entry(entry, global_raw)
        if not services:
            for tags in tag_sets:
                channels.append(
                    Channel(
                        number,
                        frozenset(tags),
                        scheme or "?",
                        problem="the URL could not be parsed (Apprise refused it)",
                    )
                )
            continue
        for index, service in enumerate(services):
            tags = tag_sets[min(index, len(tag_sets) - 1)]
            loaded_tags = frozenset(str(t) for t in service.tags) or frozenset(tags)
            channels.append(
                _checked(Channel(number, loaded_tags, _scheme(service, scheme), service), allowed)
            )
    return channels, file_problems


def _load_entry(entry: object, global_raw: object) -> list[Any]:
    """Load one `urls:` entry with Apprise's own YAML parser; [] if Apprise refuses it."""
    document: dict[str, Any] = {"version": 1, "urls": [entry]}
    if global_raw:
        document["tag"] = global_raw
    services, _includes = ConfigBase.config_parse_yaml(yaml.safe_dump(document), asset=_asset())
    return list(services)


def _asset() -> apprise.AppriseAsset:
    return apprise.AppriseAsset(app_id="Rujukan", app_desc="Rujukan", secure_logging=True)


def _scheme(service: Any, written: str | None) -> str:
    if written:
        return written
    return service.url(privacy=True).split("://", 1)[0].lower()


def _checked(channel: Channel, allowed: set[str]) -> Channel:
    """Set the channel's problem: a scheme outside the allow-list or an internal webhook host."""
    if channel.scheme not in ALLOWED_SCHEMES:
        channel.problem = "scheme not allowed (allowed: " + ", ".join(sorted(ALLOWED_SCHEMES)) + ")"
    elif channel.scheme in WEBHOOK_SCHEMES and getattr(channel.service, "mode", None) != "cloud":
        channel.problem = host_problem(getattr(channel.service, "host", None), allowed)
    if not channel.tags and channel.problem is None:
        channel.problem = "has no tag: tag it with the agency's slug"
    return channel


def check_channels(settings: Settings, directory: Directory | None = None) -> list[Problem]:
    """Every problem of the channel config: bad URLs, refused schemes or hosts, agencies without one."""
    directory = directory or load_directory(settings.agencies_file)
    channels, file_problems = read_channels(settings)
    problems = [Problem("*", None, text) for text in file_problems]
    for channel in channels:
        if channel.problem:
            for tag in sorted(channel.tags) or [f"(untagged entry #{channel.entry})"]:
                problems.append(
                    Problem(tag, channel.scheme, f"entry #{channel.entry} {channel.problem}")
                )
    covered = {tag for c in channels if c.usable for tag in c.tags}
    for agency in directory.agencies:
        if agency.slug not in covered:
            problems.append(Problem(agency.slug, None, "has no usable channel"))
    return problems


def channel_summary(settings: Settings) -> list[dict[str, object]]:
    """Each channel as tag(s), scheme and state, without the URL (it holds tokens)."""
    channels, _ = read_channels(settings)
    return [
        {
            "entry": c.entry,
            "tags": sorted(c.tags),
            "scheme": c.scheme,
            "ok": c.usable,
            "problem": c.problem,
        }
        for c in channels
    ]


def usable_apprise(settings: Settings) -> apprise.Apprise:
    """An Apprise object holding only the channels that pass validation."""
    channels, _ = read_channels(settings)
    notifier = apprise.Apprise(asset=_asset())
    for channel in channels:
        if channel.usable:
            notifier.add(channel.service)
    return notifier


def demo_channel_url(slug: str, port: int) -> str:
    """A plain-SMTP mailto URL to the local demo mailbox for one agency."""
    return (
        f"mailto://127.0.0.1:{port}?from={DEMO_SENDER}&to={slug}@rujukan.local"
        f"&mode=insecure&name=Rujukan"
    )


def demo_config_text(settings: Settings, port: int) -> str:
    """The demo channel config: every agency of the directory -> the local mailbox at `port`."""
    directory = load_directory(settings.agencies_file)
    lines = [
        "# Apprise channel config of Rujukan (demo): every agency's messages go to the local",
        "# mailbox started by `rujukan serve` (files under RUJUKAN_HOME/mailbox/).",
        "# Replace each URL with the agency's real channel, keep its tag = the agency slug,",
        "# then run `rujukan channels check`.",
        "version: 1",
        "urls:",
    ]
    for agency in directory.agencies:
        lines.append(f'  - "{demo_channel_url(agency.slug, port)}":')
        lines.append(f"      - tag: {agency.slug}")
    return "\n".join(lines) + "\n"


def _untouched_demo_port(text: str, settings: Settings) -> int | None:
    """The mailbox port of a demo config nobody has edited, or None for any other config."""
    found = re.search(r"mailto://127\.0\.0\.1:(\d+)\?", text)
    if found is None:
        return None
    port = int(found.group(1))
    return port if text == demo_config_text(settings, port) else None


def ensure_demo_config(settings: Settings) -> Path | None:
    """Write the demo channel config unless one exists; returns its path if it was written.

    A demo config that nobody edited follows RUJUKAN_MAILBOX_PORT when that changes; any
    other config (an operator's real channels) is never touched. What it writes is 0600 from
    its first byte, whatever the umask: real configs hold tokens.
    """
    from models.settings import make_private_dir, open_private

    path = settings.resolved_apprise_config
    wanted = demo_config_text(settings, settings.mailbox_port)
    if path.exists():
        current = path.read_text(encoding="utf-8")
        port = _untouched_demo_port(current, settings)
        if port is None or port == settings.mailbox_port:
            return None
        moved = path.with_name(path.name + ".new")
        with open_private(moved, "w") as handle:
            handle.write(wanted)
        moved.replace(path)  # atomic: a reader sees the old config or the new one
        return path
    make_private_dir(path.parent)
    try:
        with open_private(path, "x") as handle:  # never overwrite a config written meanwhile
            handle.write(wanted)
    except FileExistsError:
        return None
    return path
