"""seal the consent override reason

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 03:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from models.seal import Sealer
    from models.settings import get_settings

    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_sealed", sa.Text(), nullable=True))
    # Seal the reasons recorded before this revision with the configured key, then drop the
    # plain column: nothing recorded is lost, nothing stays readable.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, reason FROM consent WHERE reason IS NOT NULL")
    ).all()
    if rows:
        sealer = Sealer(get_settings().resolved_secret_key())
        for consent_id, reason in rows:
            connection.execute(
                sa.text("UPDATE consent SET reason_sealed = :sealed WHERE id = :id"),
                {"sealed": sealer.seal({"reason": reason}), "id": consent_id},
            )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("reason")


def downgrade() -> None:
    # The sealed reasons cannot be opened here without risk of writing them out in plain text.
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("reason_sealed")
        batch_op.add_column(sa.Column("reason", sa.String(length=200), nullable=True))
