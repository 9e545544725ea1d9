"""Settings in one place: environment variables with the prefix RUJUKAN_."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        description="Key that seals personal data and signs links; default a random key generated "
        "once into RUJUKAN_HOME/secret.key. Losing it makes sealed personal data unreadable.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8765", description="Public address of the web inbox, for links."
    )
    timezone: str = Field(default="Asia/Jakarta", description="Default time zone of the district.")
    coordinator_agency: str = Field(
        default="uptd-ppa",
        description="Agency (or Apprise tag) of the case coordinators, told of declines and extensions.",
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

    def resolved_secret_key(self) -> str:
        """The secret key, generating and storing one under RUJUKAN_HOME on first use."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.home / "secret.key"
        if not key_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
