"""Agency channels: the Apprise YAML config, tagged by agency slug, and its validation."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import apprise
import yaml
from apprise.config.base import ConfigBase
from apprise.plugins import N_MGR
from apprise.plugins.email import NotifyEmail

from models.directory import Directory, load_directory
from models.settings import Settings, make_private_dir, open_private

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
# Names that only ever mean a machine of the local network (mDNS, split-horizon DNS).
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


# --- hosts: where a channel connects ------------------------------------------------------------
#
# A channel whose URL names its host (json://, workflows://, self-hosted ntfy://, mailto://...)
# lets whoever writes the config choose where the relay connects: the config check, the relay
# right before each send, and a guard on every socket the send opens all refuse any address that
# is not globally routable, unless RUJUKAN_ALLOWED_WEBHOOK_HOSTS lists it.

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use translation, never global
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d, includes :: and ::1
# IANA special-purpose blocks that are not globally reachable, checked here as well because
# ipaddress's own table differs between Python patch releases (3.11.7 misses 192.0.0.8, say).
_SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
    )
)


def plugin_takes_host(plugin: type) -> bool:
    """Whether an Apprise plugin's URL names the host it connects to (its `host` template token)."""
    return "host" in (getattr(plugin, "template_tokens", None) or {})


@cache
def user_host_schemes() -> frozenset[str]:
    """Every Apprise scheme whose host is chosen by the URL, read from the plugins' own metadata."""
    return frozenset(s for s in N_MGR.schemas() if plugin_takes_host(N_MGR[s]))


def address_kind(address: IPAddress) -> str | None:
    """What keeps an address off the public internet (loopback, private...); None if global."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "IPv4-mapped IPv6"
        if address in _NAT64:  # DNS64 gives public names such addresses: judge the IPv4 inside
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            kind = address_kind(inner)
            return f"NAT64 IPv6 of a {kind} IPv4" if kind else None
        if address in _NAT64_LOCAL:
            return "local-use NAT64 IPv6"
        if address.sixtofour is not None and address_kind(address.sixtofour):
            return "6to4 IPv6 of a non-global IPv4"
        if address in _IPV4_COMPATIBLE and not (address.is_loopback or address.is_unspecified):
            return "IPv4-compatible IPv6"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _CGNAT, "shared (CGNAT)"),
        (address in _UNIQUE_LOCAL, "unique-local"),
        (getattr(address, "is_site_local", False), "site-local"),
        (address.is_reserved, "reserved"),
        (any(address in n for n in _SPECIAL_PURPOSE), "special-purpose"),
        (address.is_private, "private"),
        (not address.is_global, "non-global"),
    )
    return next((kind for hit, kind in checks if hit), None)


def _normal(host: str) -> str:
    """A host as written, compared case-blind, without IPv6 brackets or the root's trailing dot."""
    return host.strip().lower().strip("[]").rstrip(".")


def _as_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None


@dataclass(frozen=True)
class HostPolicy:
    """The non-global hosts channels may reach: RUJUKAN_ALLOWED_WEBHOOK_HOSTS, the demo mailbox."""

    names: frozenset[str] = frozenset()  # host names as written in the config
    networks: tuple[IPNetwork, ...] = ()  # addresses (a /32 or /128) and networks
    mailbox_port: int | None = None  # the demo mailbox: mailto://127.0.0.1:<this port> only


def allowed_hosts(settings: Settings) -> set[str]:
    """The hosts listed in RUJUKAN_ALLOWED_WEBHOOK_HOSTS, lower-cased."""
    return {_normal(h) for h in settings.allowed_webhook_hosts.split(",") if h.strip()}


def host_policy(settings: Settings) -> HostPolicy:
    """The host policy of these settings: allowed names, addresses, networks; the demo mailbox."""
    names, networks = set(), []
    for entry in allowed_hosts(settings):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)
    return HostPolicy(frozenset(names), tuple(networks), settings.mailbox_port)


@dataclass
class Permit:
    """Where one send may connect beyond global addresses, and what the guard refused meanwhile."""

    policy: HostPolicy
    addresses: frozenset[IPAddress] = frozenset()  # what an allowed name resolved to
    mailbox: bool = False  # the channel is the demo mailbox (email to 127.0.0.1:mailbox_port)
    refused: list[str] = field(default_factory=list)

    def problem(self, address: IPAddress, port: int | None) -> str | None:
        """Why connecting to this address is refused, or None."""
        if address in self.addresses or any(address in n for n in self.policy.networks):
            return None
        if self.mailbox and address == _LOOPBACK and port == self.policy.mailbox_port:
            return None
        kind = address_kind(address)
        return f"{address} ({kind})" if kind else None


_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_ALLOW_HINT = (
    "private, loopback or reserved addresses are refused; list the host in "
    "RUJUKAN_ALLOWED_WEBHOOK_HOSTS if it is intended"
)


def destination(service: Any) -> tuple[str, int | None] | None:
    """The host and port a channel connects to if its URL chose them; None for a vendor's host."""
    if not plugin_takes_host(type(service)):
        return None  # tgram://, whatsapp://, slack://: the plugin's own fixed API host
    if getattr(service, "mode", None) == "cloud":
        return None  # ntfy://topic goes to ntfy.sh; the host token is not used
    # Email connects to its SMTP server (from ?smtp= or the domain), not to the address's domain.
    host = getattr(service, "smtp_host", None) or getattr(service, "host", None)
    return str(host or ""), getattr(service, "port", None)


def resolve(host: str, port: int | None) -> list[IPAddress]:
    """Every address the OS gives for a host, as a connection would ask (raises OSError if none).

    getaddrinfo reads 2130706433, 0x7f000001, 127.1 or 0177.0.0.1 as IPv4 literals, exactly as
    the HTTP and SMTP clients do, so no spelling of an address escapes the check.
    """
    try:
        answers = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (UnicodeError, ValueError, TypeError) as exc:  # e.g. a name IDNA refuses: unreachable
        raise OSError(str(exc.__class__.__name__)) from exc
    found = [_as_address(str(info[4][0])) for info in answers]
    if not found or any(a is None for a in found):
        raise OSError("unexpected address family")
    return [a for a in found if a is not None]


def check_destination(
    service: Any, policy: HostPolicy, *, sending: bool
) -> tuple[str | None, Permit]:
    """Why a channel may not be used now (its host resolved right now), or None; and its permit.

    At config-check time (`sending=False`) a name that does not resolve passes (DNS may be down
    or offline); right before a send it is refused, since the check cannot vouch for it.
    """
    permit = Permit(policy)
    target = destination(service)
    if target is None:
        return None, permit
    host, port = target
    name = _normal(host)
    if not name:
        return "has no host", permit
    if name not in policy.names and (name == "localhost" or name.endswith(LOCAL_SUFFIXES)):
        return (
            "points at a local host name; list it in RUJUKAN_ALLOWED_WEBHOOK_HOSTS if intended",
            permit,
        )
    try:
        addresses = resolve(name, port)
    except OSError:
        if sending:
            return "the host name does not resolve now; the message will be retried", permit
        return None, permit
    if name in policy.names:  # the operator vouches for this name, whatever it resolves to
        permit.addresses = frozenset(addresses)
        return None, permit
    permit.mailbox = isinstance(service, NotifyEmail) and policy.mailbox_port is not None
    verb = "points at" if _as_address(name) is not None else "resolves to"
    for address in addresses:
        refused = permit.problem(address, port)
        if refused:
            return f"{verb} {refused}: {_ALLOW_HINT}", permit
    return None, permit


# The guard: during a send, every socket the plugin connects (each redirect hop, each address tried,
# whatever the DNS answers at that moment) is checked against the send's permit. Python's audit
# hook sees the address actually connected to, so no check-then-connect gap remains.
_sending: ContextVar[Permit | None] = ContextVar("rujukan_sending_permit", default=None)


class RefusedConnection(ConnectionRefusedError):
    """A connection a send may not make; plugins handle it as any refused connection."""


def _audit(event: str, args: tuple) -> None:
    if event != "socket.connect":
        return
    permit = _sending.get()
    if permit is None:
        return
    sock, address = args
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        permit.refused.append("a local socket")
        raise RefusedConnection("a send may only connect over IP")
    host, port = str(address[0]), int(address[1])
    literal = _as_address(host)
    try:
        addresses = [literal] if literal is not None else resolve(host, port)
    except OSError as exc:
        permit.refused.append("a name that does not resolve")
        raise RefusedConnection("the host name does not resolve") from exc
    for one in addresses:
        refused = permit.problem(one, port)
        if refused:
            permit.refused.append(refused)
            raise RefusedConnection(f"connection to {refused} refused")


sys.addaudithook(_audit)  # for the life of the process; it only acts inside `guarded`


@contextmanager
def guarded(permit: Permit) -> Iterator[Permit]:
    """Refuse, while the block runs in this context, any connection the permit does not allow."""
    token = _sending.set(permit)  # Apprise copies the context into its worker threads
    try:
        yield permit
    finally:
        _sending.reset(token)


# A tag as Apprise reads it without a priority or retry part ("police-unit"): such a tag selects
# exactly the channels that carry it, so it can be looked up instead of compared with each one.
_PLAIN_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]*$", re.IGNORECASE)


class CheckedApprise(apprise.Apprise):
    """An Apprise object holding checked channels and the host policy to check them by again."""

    def __init__(self, policy: HostPolicy, **kwargs: Any) -> None:
        self._index_lock = threading.Lock()  # before Apprise's own __init__, which may add()
        self._by_tag: dict[str, list[Any]] | None = None
        self._alone: dict[int, tuple[Any, apprise.Apprise]] = {}
        super().__init__(**kwargs)
        self.host_policy = policy

    def add(self, *args: Any, **kwargs: Any) -> bool:
        """Add channels (as Apprise does); the tag index is built again at its next use."""
        with self._index_lock:
            self._by_tag = None
            self._alone = {}
        return super().add(*args, **kwargs)

    def alone(self, service: Any) -> apprise.Apprise:
        """An Apprise object holding only this channel (made once per channel: a new one reads
        its translations from disk each time)."""
        with self._index_lock:
            kept = self._alone.get(id(service))
            if kept is None or kept[0] is not service:
                one = apprise.Apprise(asset=self.asset)
                one.add(service)
                kept = self._alone[id(service)] = (service, one)
            return kept[1]

    def channels_for(self, tag: str) -> list[Any]:
        """The channels of one recipient tag, the same and in the same order as
        `find(tag, match_always=False)` gives them.

        Apprise's find compares the tag with the tags of every channel on every call: with a
        channel per recipient, 2,000 recipients made that the relay's main cost. A plain tag
        is looked up in an index built once; anything else (`all`, a list, a priority) goes
        through find.
        """
        if not _PLAIN_TAG.match(tag) or tag.lower() == apprise.common.MATCH_ALL_TAG:
            return list(self.find(tag, match_always=False))
        with self._index_lock:
            if self._by_tag is None:
                index: dict[str, list[Any]] = {}
                for service in self.find(apprise.common.MATCH_ALL_TAG, match_always=False):
                    # Apprise matches an AppriseTag by its lower-cased name and a plain string
                    # tag as written; str() of either is that key.
                    for name in {str(t) for t in service.tags}:
                        index.setdefault(name, []).append(service)
                self._by_tag = index
            return list(self._by_tag.get(tag.lower(), ()))


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
    policy = host_policy(settings)
    channels: list[Channel] = []
    for number, entry in enumerate(raw["urls"], start=1):
        scheme, tag_sets = _entry_parts(entry, global_tags)
        if scheme is not None and scheme not in ALLOWED_SCHEMES:
            for tags in tag_sets:
                channels.append(_checked(Channel(number, frozenset(tags), scheme), policy))
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
                _checked(Channel(number, loaded_tags, _scheme(service, scheme), service), policy)
            )
    return channels, file_problems


def _load_entry(entry: object, global_raw: object) -> list[Any]:
    """Load one `urls:` entry with Apprise's own YAML parser; [] if Apprise refuses it."""
    document: dict[str, Any] = {"version": 1, "urls": [entry]}
    if global_raw:
        document["tag"] = global_raw
    services, _includes = ConfigBase.config_parse_yaml(yaml.safe_dump(document), asset=_asset())
    for service in services:
        # A redirect would lead past the host check: never follow one, whatever `redirect=yes`
        # the URL says (json, form, xml, workflows and ntfy pass this to requests).
        service.redirects = False
    return list(services)


def _asset() -> apprise.AppriseAsset:
    return apprise.AppriseAsset(
        app_id="Rujukan", app_desc="Rujukan", secure_logging=True, http_redirects=False
    )


def _scheme(service: Any, written: str | None) -> str:
    if written:
        return written
    return service.url(privacy=True).split("://", 1)[0].lower()


def _checked(channel: Channel, policy: HostPolicy) -> Channel:
    """Set the channel's problem: a scheme outside the allow-list or a host that is not global."""
    if channel.scheme not in ALLOWED_SCHEMES:
        channel.problem = "scheme not allowed (allowed: " + ", ".join(sorted(ALLOWED_SCHEMES)) + ")"
    elif channel.service is not None:
        channel.problem, _ = check_destination(channel.service, policy, sending=False)
    if not channel.tags and channel.problem is None:
        channel.problem = "has no tag: tag it with the agency's slug"
    return channel


def check_channels(settings: Settings, directory: Directory | None = None) -> list[Problem]:
    """Every channel config problem: bad URLs, refused schemes or hosts, agencies lacking one."""
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


def usable_apprise(settings: Settings) -> CheckedApprise:
    """An Apprise object holding only the channels that pass validation, and the host policy."""
    channels, _ = read_channels(settings)
    notifier = CheckedApprise(host_policy(settings), asset=_asset())
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
