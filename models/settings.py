"""Settings in one place: environment variables with the prefix RUJUKAN_."""

from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import IO

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

from models.errors import SealError
from models.private import PRIVATE_UMASK as PRIVATE_UMASK
from models.private import restrict_umask as restrict_umask

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Templates, the sample pathways and the sample directory: at the top of a checkout, and in
# rujukan_data/ beside the packages once the wheel is installed (pyproject.toml force-include).
DATA_ROOT = (
    PROJECT_ROOT / "rujukan_data" if (PROJECT_ROOT / "rujukan_data").is_dir() else PROJECT_ROOT
)

# Owner-only: the home holds the case database, the key, live links in the demo mailbox, logs.
# The umask and restrict_umask() live in models/private.py, which the command line loads alone.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# The artifact key of the table of every overdue step (flows/sweep.py writes it).
OVERDUE_ARTIFACT = "overdue-steps"
# The home's own settings, written by `rujukan init` and `rujukan serve` (see record_settings).
SETTINGS_FILE = "settings.env"
# Never in the settings file: the home names the file; the key has a file of its own
# (secret.key); the harness switch and the retired webhook are not configuration.
NOT_RECORDED = frozenset({"home", "secret_key", "crash_at", "task_force_webhook"})
# Always recorded, even at their defaults: the addresses another shell must agree on.
ALWAYS_RECORDED = ("web_host", "web_port", "prefect_host", "prefect_port", "mailbox_port")
# Homes whose folder was made 0700 when settings resolved them, for `tighten_home` to report.
_tightened_homes: set[Path] = set()


class Settings(BaseSettings):
    """Every setting of Rujukan, read from RUJUKAN_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="RUJUKAN_", extra="ignore")

    home: Path = Field(
        default=Path("var"),
        description="Folder of its own for the embedded databases, the demo mailbox, logs and "
        "generated keys; readable by its owner only (made 0700, its files 0600, whatever the "
        "umask).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the case database; default SQLite at "
        "RUJUKAN_HOME/rujukan.db. PostgreSQL URLs (postgresql+psycopg://...) work the same.",
    )
    pathways_dir: Path = Field(
        default=DATA_ROOT / "pathways", description="Folder with one YAML file per pathway."
    )
    agencies_file: Path = Field(
        default=DATA_ROOT / "directory" / "bengkulu-tengah.yaml",
        description="YAML agency directory (slug, name, kind, time zone, locale, escalation "
        "target).",
    )
    apprise_config: Path | None = Field(
        default=None,
        description="Apprise YAML config with each agency's channels, tagged by agency slug; "
        "default RUJUKAN_HOME/channels.yaml, written by `rujukan init` with demo channels.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that seals personal data and signs links; default a random key that "
        "`rujukan init` writes once into RUJUKAN_HOME/secret.key for a new case database. Losing "
        "it makes sealed personal data unreadable: keep a copy apart from the database backups.",
    )
    previous_secret_keys: SecretStr | None = Field(
        default=None,
        description="Earlier secret keys after a key rotation, comma-separated, newest first: "
        "data sealed and links signed with them stay readable, while everything new uses "
        "RUJUKAN_SECRET_KEY. Added to the keys `rujukan keys rotate` keeps in "
        "RUJUKAN_HOME/previous.keys.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8765",
        description="Public address of the web inbox, for links; default the inbox's own "
        "address, http://RUJUKAN_WEB_HOST:RUJUKAN_WEB_PORT (127.0.0.1 for a wildcard host).",
    )
    timezone: str = Field(default="Asia/Jakarta", description="Default time zone of the district.")
    coordinator_agency: str = Field(
        default="uptd-ppa",
        description="Agency (or Apprise tag) of the case coordinators, told of declines and "
        "extensions.",
    )

    # --- serving (`rujukan serve`) ---
    prefect_host: str = Field(
        default="127.0.0.1", description="Bind address of the Prefect server."
    )
    prefect_port: int = Field(default=4200, description="Port of the Prefect server and its UI.")
    prefect_ui_url: str | None = Field(
        default=None,
        description="Address of the Prefect UI that the manager's page links to (default "
        "http://PREFECT_HOST:PREFECT_PORT).",
    )
    prefect_api_auth_string: SecretStr | None = Field(
        default=None,
        description="Basic-auth 'user:password' for the Prefect API; required to bind beyond "
        "127.0.0.1.",
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="Address at which managers open the Prefect UI, for the link to the overdue "
        "table in escalation messages; default http://RUJUKAN_PREFECT_HOST:RUJUKAN_PREFECT_PORT "
        "(127.0.0.1 for a wildcard host).",
    )
    web_host: str = Field(default="127.0.0.1", description="Bind address of the web inbox.")
    web_port: int = Field(default=8765, description="Port of the web inbox.")
    serve_limit: int = Field(default=4, description="At most this many flow runs at once.")
    sweep_interval_seconds: int = Field(
        default=60, description="How often the deadline sweep runs."
    )
    task_force_webhook: SecretStr | None = Field(
        default=None,
        description="No longer used (a warning if set): Prefect's API shows any block's secret to "
        "whoever asks, so the task force's channel belongs in the channels file.",
    )

    # --- notifications ---
    allowed_webhook_hosts: str = Field(
        default="",
        description="Comma-separated hosts, addresses or networks (e.g. 127.0.0.1, 10.0.0.0/8) "
        "that channels naming their own host may reach although they are not public.",
    )
    relay_interval_seconds: float = Field(default=5.0, description="Relay timer for retries.")
    relay_max_attempts: int = Field(default=8, description="Attempts before a message is dead.")
    relay_backoff_base_seconds: float = Field(default=2.0, description="First retry backoff.")
    relay_backoff_cap_seconds: float = Field(default=900.0, description="Longest retry backoff.")
    relay_lease_seconds: float = Field(
        default=300.0,
        ge=30.0,
        description="How long a relay holds a message it is sending; a message still `sending` "
        "after this returns to the queue (its relay died mid-send, so it may be sent twice). At "
        "least 30 s, so that it outlives Apprise's own timeouts (4 s connect and read, 15 s SMTP).",
    )
    digest_window_seconds: float = Field(
        default=5.0,
        ge=0.0,
        description="Messages to one recipient that fall due within this many seconds of each "
        "other go out as one digest (a table of references, steps and deadlines, one inbox link); "
        "each message still records its own delivery.",
    )
    digest_max_rows: int = Field(
        default=50,
        ge=1,
        description="Rows a digest lists one by one; beyond them it gives the count and the inbox "
        "link (a chat message has room for about 50).",
    )
    send_budget_seconds: float = Field(
        default=2.0,
        ge=0.0,
        description="How long a command or a page spends sending after its commit; what is left "
        "waits for the relay that `rujukan serve` runs. Sends already started are let finish.",
    )
    mailbox_port: int = Field(
        default=8025, description="Port of the local demo mail catcher started by `rujukan serve`."
    )

    # --- web ---
    link_lifetime_days: int = Field(
        default=7, description="How long a signed step link stays valid."
    )
    refusals_per_client: str = Field(
        default="20/minute",
        description="Refused credentials (bad token, link, CSRF) one client may cause before its "
        "requests without valid credentials get 429 for the rest of the window (limits syntax).",
    )
    refusals_overall: str = Field(
        default="300/minute",
        description="Refused credentials from all clients together before every request without "
        "credentials gets 429 for the rest of the window (limits syntax).",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where the refusal counters live: memory:// for one process, "
        "redis://HOST:6379 when several inbox processes share the load.",
    )

    # --- public reports (/lapor) ---
    quick_exit_url: str = Field(
        default="https://www.bmkg.go.id/",
        description="The neutral site the public pages' quick-exit link opens (a reporter on a "
        "watched phone leaves /lapor at once).",
    )
    receipt_checks_per_client: str = Field(
        default="10/minute",
        description="Receipt numbers one client may try at /lapor before it must wait "
        "(limits syntax); with 20-digit receipts, guessing stays hopeless.",
    )
    receipt_checks_overall: str = Field(
        default="300/minute",
        description="Receipt numbers all clients together may try before everybody must wait.",
    )
    report_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of the reporting webhook POST /api/reports (HMAC-SHA256 of the "
        "body in X-Rujukan-Signature); the webhook is off while it is unset.",
    )

    # --- crash-safety harness ---
    crash_at: str | None = Field(
        default=None,
        description="For the crash-safety harness only (bench/chaos.py), never in operation: "
        "'<point>:<n>' kills the process with SIGKILL the n-th time it reaches the point "
        "(before-commit, after-commit, after-send). Unset, it costs one comparison.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - pydantic passes it by name
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - as above; unused
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables first, then the home's settings file, then the defaults."""
        home_file = DotEnvSettingsSource(settings_cls, env_file=settings_file_of(home_from_env()))
        return (init_settings, env_settings, home_file)

    @model_validator(mode="after")
    def _base_url_follows_the_inbox(self) -> Settings:
        """Links point at the inbox this home serves unless RUJUKAN_BASE_URL says otherwise."""
        if "base_url" not in self.model_fields_set:
            host = self.web_host if self.web_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            # Not through setattr: a derived address is no setting of its own to record.
            self.__dict__["base_url"] = f"http://{host}:{self.web_port}"
        return self

    @field_validator("home", "pathways_dir", "agencies_file", "apprise_config")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Relative paths are taken from where the command starts, once: a child process that
        works elsewhere (the flow runner) must name the same files."""
        return None if path is None else path.expanduser().absolute()

    @field_validator("home")
    @classmethod
    def _private(cls, path: Path) -> Path:
        """Resolving the home claims it: every process that names it (the CLI, serve and its
        children, the web app, the flow runner) creates its files there owner-only."""
        restrict_umask()
        try:
            if tighten_dir(make_private_dir(path)):
                _tightened_homes.add(path)
        except OSError:
            pass  # an unwritable home fails later, at the first write, with the path in the error
        return path

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite(cls, url: str | None) -> str | None:
        """A SQLite file given by a relative path is taken from where the command starts."""
        if url is None or not url.startswith("sqlite"):
            return url
        parsed = make_url(url)
        if (
            not parsed.database
            or parsed.database == ":memory:"
            or Path(parsed.database).is_absolute()
        ):
            return url
        return parsed.set(database=str(Path(parsed.database).absolute())).render_as_string(
            hide_password=False
        )

    @property
    def resolved_database_url(self) -> str:
        """The case database URL, defaulting to SQLite under RUJUKAN_HOME."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rujukan.db').resolve()}"

    @property
    def resolved_apprise_config(self) -> Path:
        """The Apprise channel configuration file."""
        return self.apprise_config or self.home / "channels.yaml"

    @property
    def overdue_table_url(self) -> str:
        """The Prefect UI's page of the overdue table: one address a manager bookmarks."""
        host = self.prefect_host if self.prefect_host not in ("0.0.0.0", "::") else "127.0.0.1"
        ui = self.prefect_ui_url or f"http://{host}:{self.prefect_port}"
        return f"{ui.rstrip('/')}/artifacts/key/{OVERDUE_ARTIFACT}"

    @property
    def key_file(self) -> Path:
        """Where `rujukan init` keeps the secret key when RUJUKAN_SECRET_KEY is not set."""
        return self.home / "secret.key"

    def resolved_secret_key(self) -> str:
        """RUJUKAN_SECRET_KEY, else the key file `rujukan init` wrote; never a key made up here.

        A key made up when the file is lost would seal new records with it while the old ones
        stay locked: a missing key is an error instead.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key = self.key_file.read_text().strip() if self.key_file.exists() else ""
        if not key:
            raise SealError(
                f"no secret key: set RUJUKAN_SECRET_KEY, or run `rujukan init` to "
                f"create {self.key_file}"
            )
        return key

    @property
    def previous_keys_file(self) -> Path:
        """Where `rujukan keys rotate` keeps the earlier keys, newest first, one a line."""
        return self.home / "previous.keys"

    def resolved_previous_secret_keys(self) -> tuple[str, ...]:
        """The earlier secret keys, newest first: RUJUKAN_PREVIOUS_SECRET_KEYS, then the file."""
        keys: list[str] = []
        if self.previous_secret_keys is not None:
            keys += self.previous_secret_keys.get_secret_value().split(",")
        if self.previous_keys_file.exists():
            keys += self.previous_keys_file.read_text().splitlines()
        current = self.resolved_secret_key()
        stripped = (key.strip() for key in keys)
        return tuple(dict.fromkeys(key for key in stripped if key and key != current))


def home_from_env() -> Path:
    """RUJUKAN_HOME as given (default ./var), absolute: the folder whose settings file is read."""
    return Path(os.environ.get("RUJUKAN_HOME") or "var").expanduser().absolute()


def settings_file_of(home: Path) -> Path:
    """The settings file of a home."""
    return home / SETTINGS_FILE


def _env_value(value: object) -> str:
    """A value as the settings file holds it: double-quoted, backslashes and quotes escaped."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError("a setting holds a line break; it cannot be recorded")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def record_settings(settings: Settings) -> Path:
    """Write the home's settings file (0600): every setting given to this command, from the
    environment or the file itself, and the addresses at their current values.

    Every later command that names this home reads it, so a second shell agrees with the running
    serve on ports and links without repeating its environment; an environment variable still
    wins. Written by `rujukan init` and `rujukan serve`, replaced whole (never half-written).
    """
    names = [
        name
        for name in Settings.model_fields
        if name not in NOT_RECORDED
        and (name in settings.model_fields_set or name in ALWAYS_RECORDED)
    ]
    lines = [
        "# Settings of this Rujukan home, written by `rujukan init` and `rujukan serve`.",
        "# Every command using this home reads them; an environment variable of the same",
        "# name wins. Edit with care: serve writes it again from what it runs with.",
    ]
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            lines.append(f"RUJUKAN_{name.upper()}={_env_value(value)}")
    path = settings_file_of(settings.home)
    make_private_dir(settings.home)
    partial = path.with_name(f".{SETTINGS_FILE}.{os.getpid()}")
    with open_private(partial, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(partial, path)
    return path


def _shared_folder(path: Path) -> bool:
    """True for folders that are not Rujukan's to lock: /, the user's home, /tmp-like folders."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    try:
        user_home = Path.home().resolve()
    except RuntimeError:  # no HOME and no passwd entry (a bare container)
        user_home = Path("/")
    return bool(mode & stat.S_ISVTX) or path.resolve() in (Path("/"), user_home)


def _owned(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid()


def make_private_dir(path: Path, *, tighten_existing: bool = False) -> Path:
    """Create `path` and its missing parents as 0700 folders, whatever the umask; return `path`.

    With `tighten_existing`, an existing folder that others can read becomes 0700 as well.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: keep its mode
            continue
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is masked; a strange umask could lose u+w
    if tighten_existing and not missing:
        tighten_dir(path)
    return path


def tighten_dir(path: Path) -> bool:
    """Make a folder of this user that others can read 0700; True if it changed.

    Never /, the user's own home folder or a sticky folder such as /tmp: those are not Rujukan's.
    """
    info = path.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or not _owned(info)
        or not info.st_mode & 0o077
        or _shared_folder(path)
    ):
        return False
    os.chmod(path, PRIVATE_DIR_MODE)
    return True


def open_private(path: Path, mode: str = "wb", encoding: str | None = None) -> IO:
    """Open `path` for writing ('w', 'a' or 'x', with 'b' for bytes), created 0600 whatever the
    umask; an existing file of this user that others can read is made 0600 first."""
    flags = {"w": os.O_TRUNC, "a": os.O_APPEND, "x": os.O_EXCL}[mode[0]]
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, PRIVATE_FILE_MODE)
    try:
        info = os.fstat(handle)
        if _owned(info) and info.st_mode & 0o077:
            os.fchmod(handle, stat.S_IMODE(info.st_mode) & 0o700)
        return os.fdopen(handle, mode, encoding=None if "b" in mode else encoding or "utf-8")
    except BaseException:
        os.close(handle)
        raise


def tighten_home(settings: Settings) -> list[Path]:
    """Take group and other access off everything in RUJUKAN_HOME and the SQLite case database.

    A home made by an older version (or under a loose umask) had 0755 folders and 0644 files.
    Symbolic links and other users' files are left alone. Returns the paths that changed.
    """
    changed: list[Path] = []

    def tighten(path: Path) -> None:
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode) or not _owned(info) or not info.st_mode & 0o077:
            return
        wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(info.st_mode) else info.st_mode & 0o700
        os.chmod(path, stat.S_IMODE(wanted))
        changed.append(path)

    home = settings.home
    if home in _tightened_homes:  # made 0700 when the settings were read, moments ago
        _tightened_homes.discard(home)
        changed.append(home)
    if home.is_dir() and not home.is_symlink() and not _shared_folder(home):
        tighten(home)
        for root, folders, files in os.walk(home):  # does not follow links to folders
            for name in (*folders, *files):
                tighten(Path(root) / name)
    database = sqlite_file(settings.resolved_database_url)
    if database is not None:  # it may live outside the home (RUJUKAN_DATABASE_URL)
        for suffix in ("", "-wal", "-shm", "-journal"):
            tighten(Path(f"{database}{suffix}"))
    return changed


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None (another database, in memory, or a file: URI)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
