"""referral: the statistical case facts (form of exploitation, how the case came in, recruitment,
place), optional codes for the task force's report

Revision ID: 0007_report
Revises: 0006
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_report"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"exploitation": 20, "case_source": 30, "recruitment": 30, "place": 6}


def upgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        for name, length in COLUMNS.items():
            batch.add_column(
                sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True)
            )


def downgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
