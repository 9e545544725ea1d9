"""public_report and report_message: public reports, their receipts and questions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.database

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("receipt_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("danger_now", sa.Boolean(), nullable=False),
        sa.Column("at_risk", sa.String(length=24), nullable=False),
        sa.Column("people", sa.Integer(), nullable=True),
        sa.Column("exploitation", sa.String(length=24), nullable=True),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", models.database.UTCDateTime(), nullable=False),
        sa.Column("closed_at", models.database.UTCDateTime(), nullable=True),
        sa.Column("close_reason", sa.String(length=24), nullable=True),
        sa.Column("launched_referral_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["referral_id"], ["referral.id"]),
        sa.ForeignKeyConstraint(["launched_referral_id"], ["referral.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("referral_id"),
        sa.UniqueConstraint("receipt_hash"),
    )
    op.create_table(
        "report_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("from_reporter", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", models.database.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["public_report.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_message_report_id", "report_message", ["report_id"])


def downgrade() -> None:
    op.drop_index("ix_report_message_report_id", table_name="report_message")
    op.drop_table("report_message")
    op.drop_table("public_report")
