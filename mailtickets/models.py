"""The one data model (SQLAlchemy 2 typed ORM).

Constraints that protect data live here, in the schema: contact and agent emails are unique
case-insensitively, a ticket number is unique per prefix, an inbound message is stored once per
dedupe key, and a domain belongs to one client.  Schema changes go through Alembic
(`mailtickets/migrations`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from mailtickets.fit import fit_columns

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no zone and returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    WORKING = "working"
    HOLD = "hold"
    AUTO_CLOSE = "auto-close"
    CLOSED = "closed"


class Priority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(enum.StrEnum):
    CREATED = "created"
    REPLIED = "replied"
    REOPENED = "reopened"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    DROPPED = "dropped"


class AuthorRole(enum.StrEnum):
    CLIENT = "client"
    AGENT = "agent"
    SYSTEM = "system"  # mail we sent on our own: acknowledgements, notices, copies of agents' replies


class AgentRole(enum.StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class QuarantineState(enum.StrEnum):
    HELD = "held"
    RELEASED = "released"
    DISCARDED = "discarded"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def _enum(cls: type[enum.StrEnum], length: int = 16) -> Enum:
    # Stored as plain strings (no native ENUM type) so that adding a value needs no type migration.
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Client(Timestamped, Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    notes: Mapped[str | None] = mapped_column(Text)
    # Deactivated (archived): its domains and contacts are no longer known senders; nothing is deleted.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    # Loaded only where asked for (directory views): a client joined to every contact and ticket the
    # pipeline reads would otherwise cost a query each time, a fifth of an ingest.
    domains: Mapped[list[ClientDomain]] = relationship(
        back_populates="client", cascade="all, delete-orphan", lazy="raise_on_sql", order_by="ClientDomain.domain"
    )


class ClientDomain(Base):
    __tablename__ = "client_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    # Stored lower-case (IDNA for non-ASCII); unique: a domain belongs to exactly one client.
    domain: Mapped[str] = mapped_column(String(253), unique=True)

    client: Mapped[Client] = relationship(back_populates="domains")


class Contact(Timestamped, Base):
    __tablename__ = "contacts"
    __table_args__ = (Index("uq_contacts_email_lower", func.lower("email"), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(191))
    phone: Mapped[str | None] = mapped_column(String(32))
    extension: Mapped[str | None] = mapped_column(String(32))
    mobile: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(128))
    notes: Mapped[str | None] = mapped_column(Text)
    important: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    billing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    technical: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    auth_method: Mapped[str] = mapped_column(String(8), default="local", server_default="local")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    external_id: Mapped[str | None] = mapped_column(String(191), unique=True)

    client: Mapped[Client | None] = relationship(lazy="joined")


class Agent(Timestamped, Base):
    __tablename__ = "agents"
    __table_args__ = (Index("uq_agents_email_lower", func.lower("email"), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(191))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # The admin console: "admin" may change rules and the directory, "agent" works tickets.
    role: Mapped[AgentRole] = mapped_column(_enum(AgentRole, 8), default=AgentRole.AGENT, server_default="agent")
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id; None: cannot log in

    # Loaded where asked for (directory views, agent mail): the agent is joined to every ticket read.
    aliases: Mapped[list[AgentAlias]] = relationship(
        back_populates="agent", cascade="all, delete-orphan", lazy="raise_on_sql", order_by="AgentAlias.email"
    )


class ConsoleSession(Base):
    """A signed-in console browser: the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)

    agent: Mapped[Agent] = relationship(lazy="joined")


class LoginFailure(Base):
    """A failed console sign-in, counted per client address and per account within the rate limit's window.

    In the database, so that every instance in front of one PostgreSQL shares the limit; rows older than
    the window are deleted as new failures come in.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_kind_key_failed", "kind", "key", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "address" or "account"
    key: Mapped[str] = mapped_column(String(191))  # the client's IP address, or the account's email lower-cased
    failed_at: Mapped[datetime] = mapped_column(index=True)


class AgentAlias(Base):
    """Another address an agent writes from (a shared inbox, an old address); unique case-insensitively."""

    __tablename__ = "agent_aliases"
    __table_args__ = (Index("uq_agent_aliases_email_lower", func.lower("email"), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(191))

    agent: Mapped[Agent] = relationship(back_populates="aliases")


class ChangeCounter(Base):
    """A number that every write to a cached table bumps, in the writer's transaction (db.py's hook).

    The pipeline keeps agents, client domains and rules in memory and reads this one row per
    transaction to know whether they changed, whichever instance or door (API, CLI, console) wrote.
    """

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class TicketCounter(Base):
    """Next ticket number per prefix, bumped with UPDATE … RETURNING so instances never clash."""

    __tablename__ = "ticket_counters"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Timestamped, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("prefix", "number", name="uq_tickets_prefix_number"),
        Index("ix_tickets_status_updated", "status", "updated_at"),
        Index("ix_tickets_status_id", "status", "id"),  # the console's list of one status, newest first
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(998))
    description: Mapped[str] = mapped_column(Text, default="")
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"), index=True)
    priority: Mapped[Priority] = mapped_column(_enum(Priority), default=Priority.MEDIUM)
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus), default=TicketStatus.OPEN)
    category: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    closed_at: Mapped[datetime | None] = mapped_column()
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Auto-close countdown: when the ticket entered auto-close (or last heard from the client) and
    # when the chaser went out.  A client reply clears both.
    autoclose_since: Mapped[datetime | None] = mapped_column()
    chaser_sent_at: Mapped[datetime | None] = mapped_column()
    suppress_acknowledgement: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    client: Mapped[Client | None] = relationship(lazy="joined")
    contact: Mapped[Contact | None] = relationship(lazy="joined")
    assigned_agent: Mapped[Agent | None] = relationship(lazy="joined")
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.id", lazy="raise"
    )

    @property
    def reference(self) -> str:
        return f"{self.prefix}{self.number}"


class TicketMessage(Base):
    __tablename__ = "ticket_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_email: Mapped[str | None] = mapped_column(String(320))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # Who wrote it: the client side, an agent (by mail or the API), or we (notifications); None: older rows.
    author_role: Mapped[AuthorRole | None] = mapped_column(_enum(AuthorRole, length=8))
    # Message-IDs are stored without angle brackets; indexed because threading looks them up.
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(998))
    to_addresses: Mapped[list[Any]] = mapped_column(default=list)
    cc_addresses: Mapped[list[Any]] = mapped_column(default=list)
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_text_new: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    # Parts, attachments and text the limits left out of this message, each with the reason.
    left_out: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    inbound_mail_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    inbound_mail: Mapped[InboundMail | None] = relationship(lazy="raise_on_sql")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id", lazy="selectin", cascade="all, delete-orphan"
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("ticket_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(998))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)

    message: Mapped[TicketMessage] = relationship(back_populates="attachments")


class InboundMail(Base):
    """One row per message that reached the pipeline: makes processing idempotent and explains it."""

    __tablename__ = "inbound_mail"
    # The console's quarantine page: held mail, newest first, without a scan; the trace's exact look-ups
    # of a sender or a Message-ID (hash on PostgreSQL: a Message-ID may be longer than a btree entry).
    __table_args__ = (
        Index("ix_inbound_mail_quarantine_received", "quarantine_state", "received_at"),
        Index("ix_inbound_mail_sender", "sender"),
        Index("ix_inbound_mail_message_id", "message_id", postgresql_using="hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "mid:<message-id>|<sender>" or "sha256:<raw digest>" when the message has no Message-ID.
    dedupe_key: Mapped[str] = mapped_column(String(1100), unique=True)
    source: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    # Raw bytes kept (content-addressed under the data dir) for quarantined and dropped mail.
    raw_stored: Mapped[bool] = mapped_column(Boolean, default=False)
    quarantine_state: Mapped[QuarantineState | None] = mapped_column(_enum(QuarantineState))
    # The trace: which rules matched, and the header block as received (cut to MAX_TRACE_HEADER_CHARS).
    matched_rules: Mapped[list[Any] | None] = mapped_column()
    headers: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    # The trusted receiving system's verdict on the sender: True/False, None when there was none.
    authenticated: Mapped[bool | None] = mapped_column(Boolean)


class IngestFailure(Base):
    """A message (by its bytes) whose processing failed "temporarily": repeated, it is quarantined as poison."""

    __tablename__ = "ingest_failures"

    raw_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[datetime] = mapped_column()
    last_failed_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str] = mapped_column(Text)


class OutboxMail(Base):
    """A notification written in the same transaction as its cause; delivered later by the sender task."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_recipient_created", "recipient", "created_at"),
        Index("ix_outbox_ticket_recipient_created", "ticket_id", "recipient", "created_at"),  # also the FK's
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    locked_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column()


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0, index=True)
    match: Mapped[str] = mapped_column(String(8), default="all")
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    stop: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    updated_by: Mapped[str | None] = mapped_column(String(200))


class RuleChange(Base):
    """Audit trail: who changed which rule, when, and what it looked like afterwards."""

    __tablename__ = "rule_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_name: Mapped[str] = mapped_column(String(200), index=True)
    change: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column()


class MailboxState(Base):
    """Per IMAP mailbox: the UIDVALIDITY seen and the highest UID fully processed."""

    __tablename__ = "mailbox_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    # IMAP UIDs and UIDVALIDITY are unsigned 32-bit: beyond PostgreSQL's INTEGER.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Lease(Base):
    """Which instance consumes a mailbox (or runs a job) right now; others take over when it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()


fit_columns(Base.metadata)  # every value fitted to its column at bind time: see mailtickets.fit
