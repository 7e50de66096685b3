"""failed console sign-ins in the database: one rate limit for every instance

Revision ID: 0007_login_failures
Revises: 0006_client_active
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailtickets.models

revision: str = "0007_login_failures"
down_revision: str | None = "0006_client_active"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=191), nullable=False),
        sa.Column("failed_at", mailtickets.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"], unique=False)
    op.create_index("ix_login_failures_kind_key_failed", "login_failures", ["kind", "key", "failed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_login_failures_kind_key_failed", table_name="login_failures")
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_table("login_failures")
