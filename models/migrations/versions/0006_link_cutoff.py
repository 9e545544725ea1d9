"""link_cutoff: an agency's signed links made before a moment stop working

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.database

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_cutoff",
        sa.Column("agency", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("not_before", models.database.UTCDateTime(), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.PrimaryKeyConstraint("agency"),
    )


def downgrade() -> None:
    op.drop_table("link_cutoff")
