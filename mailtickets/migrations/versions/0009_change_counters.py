"""a change counter for the pipeline's caches (agents, client domains, rules)

Revision ID: 0009_change_counters
Revises: 0008_trace_lookups
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_change_counters"
down_revision: str | None = "0008_trace_lookups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    counters = op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )
    op.bulk_insert(counters, [{"name": "directory", "version": 0}])


def downgrade() -> None:
    op.drop_table("change_counters")
