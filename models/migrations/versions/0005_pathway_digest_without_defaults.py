"""pathway digests leave out fields at their defaults

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The stored definitions stay as they were; only their fingerprints are computed the new way,
    # so that an unchanged pathway file still matches the version it was first used as.
    from models.pathway import Pathway

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, version, definition FROM pathway_version")).all()
    for row in rows:
        digest = Pathway.model_validate_json(row.definition).digest()
        connection.execute(
            sa.text(
                "UPDATE pathway_version SET digest = :digest WHERE id = :id AND version = :version"
            ),
            {"digest": digest, "id": row.id, "version": row.version},
        )


def downgrade() -> None:
    import hashlib
    import json

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, version, definition FROM pathway_version")).all()
    for row in rows:
        canonical = json.dumps(json.loads(row.definition), sort_keys=True)
        connection.execute(
            sa.text(
                "UPDATE pathway_version SET digest = :digest WHERE id = :id AND version = :version"
            ),
            {
                "digest": hashlib.sha256(canonical.encode()).hexdigest(),
                "id": row.id,
                "version": row.version,
            },
        )
