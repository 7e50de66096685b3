"""agent aliases and the author role of ticket messages

Revision ID: 0005_agent_aliases
Revises: 0004_poison
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_agent_aliases"
down_revision: str | None = "0004_poison"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = sa.Enum("client", "agent", "system", name="authorrole", native_enum=False, length=8)


def upgrade() -> None:
    op.create_table(
        "agent_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=191), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_aliases_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_aliases")),
    )
    op.create_index(op.f("ix_agent_aliases_agent_id"), "agent_aliases", ["agent_id"], unique=False)
    op.create_index("uq_agent_aliases_email_lower", "agent_aliases", [sa.text("lower(email)")], unique=True)
    with op.batch_alter_table("ticket_messages") as batch:
        batch.add_column(sa.Column("author_role", ROLE, nullable=True))
    # Existing rows: inbound mail came from the client side, outbound rows with an agent are replies.
    op.execute(
        "UPDATE ticket_messages SET author_role = CASE"
        " WHEN direction = 'inbound' THEN 'client'"
        " WHEN agent_id IS NOT NULL OR author_name = 'Support' THEN 'agent'"
        " ELSE 'system' END"
    )


def downgrade() -> None:
    with op.batch_alter_table("ticket_messages") as batch:
        batch.drop_column("author_role")
    op.drop_index("uq_agent_aliases_email_lower", table_name="agent_aliases")
    op.drop_index(op.f("ix_agent_aliases_agent_id"), table_name="agent_aliases")
    op.drop_table("agent_aliases")
