"""the rate guard's look-up of one recipient's automatic mail about one ticket

Revision ID: 0010_outbox_ticket_recipient
Revises: 0009_change_counters
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_outbox_ticket_recipient"
down_revision: str | None = "0009_change_counters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Without it the look-up went through the recipient's index: every alert an agent had in the hour.
    # It begins with ticket_id, so the index on ticket_id alone (the foreign key's) is no longer needed.
    op.create_index("ix_outbox_ticket_recipient_created", "outbox", ["ticket_id", "recipient", "created_at"])
    op.drop_index("ix_outbox_ticket_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_ticket_id", "outbox", ["ticket_id"], unique=False)
    op.drop_index("ix_outbox_ticket_recipient_created", table_name="outbox")
