"""indexes for the trace's exact look-ups of a sender or a Message-ID

Revision ID: 0008_trace_lookups
Revises: 0007_login_failures
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_trace_lookups"
down_revision: str | None = "0007_login_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbound_mail_sender", "inbound_mail", ["sender"], unique=False)
    # Hash on PostgreSQL: a Message-ID (up to 998 characters) can exceed a btree entry's 2704 bytes.
    op.create_index("ix_inbound_mail_message_id", "inbound_mail", ["message_id"], postgresql_using="hash")


def downgrade() -> None:
    op.drop_index("ix_inbound_mail_message_id", table_name="inbound_mail")
    op.drop_index("ix_inbound_mail_sender", table_name="inbound_mail")
