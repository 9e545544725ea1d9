"""Settings in one place: environment variables with the prefix RUJUKAN_."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.errors import SealError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting of Rujukan, read from RUJUKAN_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="RUJUKAN_", extra="ignore")

    home: Path = Field(
        default=Path("var"),
        description="Folder for the embedded databases, the demo mailbox and generated keys.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the case database; default SQLite at RUJUKAN_HOME/rujukan.db. "
        "PostgreSQL URLs (postgresql+psycopg://...) work the same.",
    )
    pathways_dir: Path = Field(
        default=PROJECT_ROOT / "pathways", description="Folder with one YAML file per pathway."
    )
    agencies_file: Path = Field(
        default=PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml",
        description="YAML agency directory (slug, name, kind, time zone, locale, escalation target).",
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
    base_url: str = Field(
        default="http://127.0.0.1:8765", description="Public address of the web inbox, for links."
    )
    timezone: str = Field(default="Asia/Jakarta", description="Default time zone of the district.")
    coordinator_agency: str = Field(
        default="uptd-ppa",
        description="Agency (or Apprise tag) of the case coordinators, told of declines and extensions.",
    )

    # --- serving (`rujukan serve`) ---
    prefect_host: str = Field(
        default="127.0.0.1", description="Bind address of the Prefect server."
    )
    prefect_port: int = Field(default=4200, description="Port of the Prefect server and its UI.")
    prefect_api_auth_string: SecretStr | None = Field(
        default=None,
        description="Basic-auth 'user:password' for the Prefect API; required to bind beyond 127.0.0.1.",
    )
    web_host: str = Field(default="127.0.0.1", description="Bind address of the web inbox.")
    web_port: int = Field(default=8765, description="Port of the web inbox.")
    serve_limit: int = Field(default=4, description="At most this many flow runs at once.")
    sweep_interval_seconds: int = Field(
        default=60, description="How often the deadline sweep runs."
    )
    task_force_webhook: SecretStr | None = Field(
        default=None,
        description="URL the Prefect automation on rujukan.step.escalated posts to (e.g. the task "
        "force's chat webhook); without it the automation only records that it fired.",
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

    # --- crash-safety harness ---
    crash_at: str | None = Field(
        default=None,
        description="For the crash-safety harness only (bench/chaos.py), never in operation: "
        "'<point>:<n>' kills the process with SIGKILL the n-th time it reaches the point "
        "(before-commit, after-commit, after-send). Unset, it costs one comparison.",
    )

    @field_validator("home", "pathways_dir", "agencies_file", "apprise_config")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Relative paths are taken from where the command starts, once: a child process that
        works elsewhere (the flow runner) must name the same files."""
        return None if path is None else path.expanduser().absolute()

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite(cls, url: str | None) -> str | None:
        """A SQLite file given by a relative path is taken from where the command starts."""
        if url is None or not url.startswith("sqlite"):
            return url
        from sqlalchemy.engine import make_url

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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
