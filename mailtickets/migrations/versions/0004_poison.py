"""poison: repeated temporary failures per message; what the limits left out of a message

Revision ID: 0004_poison
Revises: 0003_console
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailtickets.models

revision: str = "0004_poison"
down_revision: str | None = "0003_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_failures",
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", mailtickets.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", mailtickets.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("raw_sha256", name=op.f("pk_ingest_failures")),
    )
    op.create_index(op.f("ix_ingest_failures_last_failed_at"), "ingest_failures", ["last_failed_at"], unique=False)
    with op.batch_alter_table("ticket_messages") as batch:
        batch.add_column(sa.Column("left_out", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("ticket_messages") as batch:
        batch.drop_column("left_out")
    op.drop_index(op.f("ix_ingest_failures_last_failed_at"), table_name="ingest_failures")
    op.drop_table("ingest_failures")
