"""What every request of the web app needs: settings, the case database, catalog, sealer, clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.catalog import Catalog, load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.seal import Sealer
from models.settings import DATA_ROOT, Settings
from web.limits import Throttle

TEMPLATES = DATA_ROOT / "templates" / "web"


@dataclass
class Web:
    """The app's resources, built once: settings, the case database, catalog, sealer, clock."""

    settings: Settings
    database: Engine
    catalog: Catalog
    sealer: Sealer
    secret: str
    templates: Jinja2Templates
    throttle: Throttle
    clock: Callable[[], datetime] = utcnow
    previous_secrets: tuple[str, ...] = ()  # links and cookies signed before a key rotation

    def now(self) -> datetime:
        """The current moment (a test may give the app its own clock)."""
        return self.clock()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction on the case database."""
        with transaction(self.database) as session:
            yield session

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS when the public address is HTTPS."""
        return self.settings.base_url.startswith("https://")


def build_web(settings: Settings, clock: Callable[[], datetime] | None = None) -> Web:
    """The resources of a web app for `settings`."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Web(
        settings=settings,
        database=engine_for(settings.resolved_database_url),
        catalog=load_catalog(settings),
        sealer=Sealer.for_settings(settings),
        secret=settings.resolved_secret_key(),
        previous_secrets=settings.resolved_previous_secret_keys(),
        templates=Jinja2Templates(env=env),
        throttle=Throttle(settings),
        clock=clock or utcnow,
    )
