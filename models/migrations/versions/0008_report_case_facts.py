"""referral: the statistical case facts (form of exploitation, how the case came in, recruitment,
place), optional codes for the task force's report; indexes for reading a period

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"exploitation": 20, "case_source": 30, "recruitment": 30, "place": 6}


def upgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        for name, length in COLUMNS.items():
            batch.add_column(
                sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True)
            )
    # The report reads a period's referrals and steps: by launch, ready and due time (the last
    # covers the trend's count of late steps).
    op.create_index("ix_referral_created_at", "referral", ["created_at"])
    op.create_index("ix_step_ready_at", "step", ["ready_at"])
    op.create_index("ix_step_due_at", "step", ["due_at", "status", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_step_due_at", table_name="step")
    op.drop_index("ix_step_ready_at", table_name="step")
    op.drop_index("ix_referral_created_at", table_name="referral")
    with op.batch_alter_table("referral") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
