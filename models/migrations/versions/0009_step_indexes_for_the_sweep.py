"""step: drop ix_step_referral_id (uq_step_instance leads with referral_id and serves its
lookups); ix_step_next_check holds only the steps that have a next check (the open ones)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_CHECK = sa.text("next_check_at IS NOT NULL")


def upgrade() -> None:
    # Every versioned update of a step writes an entry into each of its indexes (next_check_at
    # changes, so PostgreSQL cannot update in place): an index no query needs is paid for by
    # every sweep, launch and action. A closed step has no next check (models.actions._close),
    # so the sweep's index need not list the whole history.
    op.drop_index("ix_step_referral_id", table_name="step")
    op.drop_index("ix_step_next_check", table_name="step")
    op.create_index(
        "ix_step_next_check",
        "step",
        ["next_check_at"],
        postgresql_where=HAS_CHECK,
        sqlite_where=HAS_CHECK,
    )


def downgrade() -> None:
    op.drop_index("ix_step_next_check", table_name="step")
    op.create_index("ix_step_next_check", "step", ["next_check_at"])
    op.create_index("ix_step_referral_id", "step", ["referral_id"])
