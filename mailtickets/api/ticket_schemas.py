"""The shapes of tickets in the HTTP API: request bodies (validated here) and documented responses.

Responses mirror `mailtickets.tickets.views`, which the CLI shares; the models make them part of the
OpenAPI document and check that the views keep to it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailtickets.api.deps import PageInfo
from mailtickets.directory.validation import EMAIL_MAX, ID_MAX, one_line

Status = Literal["open", "working", "hold", "auto-close", "closed"]
PriorityName = Literal["low", "medium", "high"]
RowRef = Annotated[int, Field(ge=1, le=ID_MAX)]
MAX_BODY_CHARS = 1_000_000


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None


class MessageOut(BaseModel):
    id: int
    direction: Literal["inbound", "outbound"]
    public: bool
    author_role: Literal["client", "agent", "system"]
    author_name: str | None
    author_email: str | None
    message_id: str | None
    subject: str | None
    to: list[str]
    cc: list[str]
    body_text: str
    body_text_new: str
    body_html: str | None
    created_at: str | None
    attachments: list[AttachmentOut]
    left_out: list[str] = []  # parts, attachments or text over a limit, each with the reason


class ContactSummary(BaseModel):
    id: int
    name: str
    email: str | None
    client: str | None


class TicketOut(BaseModel):
    id: int
    ref: str
    subject: str
    status: Status
    priority: PriorityName
    category: str | None
    tags: list[str]
    client: str | None
    client_id: int | None
    contact_id: int | None
    assigned_agent: str | None
    merged_into_id: int | None
    linked_ticket_id: int | None
    created_at: str | None
    updated_at: str | None
    closed_at: str | None


class TicketDetail(TicketOut):
    description: str
    contact: ContactSummary | None
    messages: list[MessageOut]


class TicketPage(PageInfo):
    data: list[TicketOut]


class TicketCreate(BaseModel):
    """A ticket typed in by an agent, e.g. for a call taken by phone."""

    model_config = ConfigDict(extra="forbid")

    subject: Annotated[str, Field(min_length=1, max_length=998), AfterValidator(one_line)]  # a mail header
    description: Annotated[str, Field(max_length=MAX_BODY_CHARS)] = ""
    contact_id: RowRef | None = None
    client_id: RowRef | None = None
    client: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # by name, as the CLI takes it
    priority: PriorityName = "medium"
    category: Annotated[str, Field(max_length=100)] | None = None
    assigned_agent: Annotated[str, Field(max_length=EMAIL_MAX)] | None = None
    acknowledge: bool = True


class TicketUpdate(BaseModel):
    """Status, priority and assignee; an omitted field stays, assigned_agent null unassigns."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    priority: PriorityName | None = None
    assigned_agent: Annotated[str, Field(max_length=EMAIL_MAX)] | None = None


class ReplyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY_CHARS)]
    private: bool = False
    agent: Annotated[str, Field(max_length=EMAIL_MAX)] | None = None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: Annotated[str, Field(min_length=1, max_length=64)]
