"""Alembic environment: the case database's schema comes from the SQLModel tables."""

from alembic import context
from sqlmodel import SQLModel

import models.access  # noqa: F401  (registers the tables)
import models.audit  # noqa: F401
import models.catalog  # noqa: F401
import models.note  # noqa: F401
import models.outbox  # noqa: F401
import models.referral  # noqa: F401
import models.step  # noqa: F401
from models.database import engine_for

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine") or engine_for(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
