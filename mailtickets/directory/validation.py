"""The field rules for clients, contacts and agents, in one place for the CLI and the HTTP API.

Contacts follow the seeds' rules (ITFlow, the PSA's contact API, CIOPulse): name required and at
most 64 characters; email valid and at most 191; phone, extension and mobile at most 32; title and
department at most 64; auth method `local` or `sso`; a mobile in E.164 when the setting asks for it;
no line breaks or control characters in one-line fields (everything but notes).
Every failing field is reported at once in one InvalidInput.  An empty string in an optional field
means "no value" (ITFlow sends "" for empty fields), the same as null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import idna
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from mailtickets.errors import Conflict, InvalidInput

NAME_MAX = 64
EMAIL_MAX = 191
PHONE_MAX = 32
LABEL_MAX = 64
LOCATION_MAX = 128
EXTERNAL_ID_MAX = 191
CLIENT_NAME_MAX = 200
AGENT_NAME_MAX = 100
DOMAIN_MAX = 253
SYNTAX_PROBE_DOMAIN = "example.com"  # stands in for the domain while email-validator checks the local part
ID_MAX = 2**31 - 1  # ids are INTEGER columns (32-bit on PostgreSQL): bigger numbers name no row
M = TypeVar("M", bound="BaseModel")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# Line breaks and other control characters (tab aside): names and subjects end up in email headers,
# where a line break makes the message unsendable (or would inject a header).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


class FieldConflict(Conflict):
    """A unique value already belongs to another record; `fields` names the clashing field."""

    def __init__(self, message: str, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.fields = fields


def normalize_email(value: str) -> str:
    """The one address rule for every door (CLI, API, inbound mail): syntax and IDNA, no deliverability.

    The local part follows email-validator's syntax rules; the domain follows the same IDNA (UTS 46)
    rules as client domains, so internal names an MSP's clients run (`corp.local`, `acme.test`) pass
    where a deliverability-minded validator refuses them. The domain is lower-cased, kept in Unicode.
    """
    local, at, domain = value.strip().rpartition("@")
    if not at or not local:
        raise ValueError("not a valid email address: it needs a local part, an @-sign and a domain")
    try:
        checked = validate_email(f"{local}@{SYNTAX_PROBE_DOMAIN}", check_deliverability=False)
        ascii_domain = normalize_domain(domain)
    except (EmailNotValidError, ValueError) as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    return f"{checked.local_part}@{idna.decode(ascii_domain)}"


def is_valid_email(value: str) -> bool:
    try:
        normalize_email(value)
    except ValueError:
        return False
    return True


def normalize_domain(value: str) -> str:
    """A registered domain as stored: lower-case, IDNA (punycode) for non-ASCII, no trailing dot."""
    text = value.strip().lstrip("@").rstrip(".").lower()
    try:
        ascii_form = idna.encode(text, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"not a valid domain: {value!r}") from exc
    if "." not in ascii_form or len(ascii_form) > DOMAIN_MAX:
        raise ValueError(f"not a valid domain: {value!r}")
    return ascii_form


def _blank_to_none(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if "\x00" in value:  # PostgreSQL refuses NUL in text; refuse it everywhere alike
        raise ValueError("may not contain NUL characters")
    return value.strip() or None


def one_line(value: str) -> str:
    """A value for one line (a name, a subject): no line breaks or control characters."""
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("may not contain line breaks or control characters")
    return value


def _one_line_or_none(value: Any) -> Any:
    value = _blank_to_none(value)
    return one_line(value) if isinstance(value, str) else value


# Constraints sit on the str member: pydantic cannot apply max_length to the None of a union.
Text32 = Annotated[Annotated[str, Field(max_length=PHONE_MAX)] | None, BeforeValidator(_one_line_or_none)]
Text64 = Annotated[Annotated[str, Field(max_length=LABEL_MAX)] | None, BeforeValidator(_one_line_or_none)]
Text128 = Annotated[Annotated[str, Field(max_length=LOCATION_MAX)] | None, BeforeValidator(_one_line_or_none)]
Text191 = Annotated[Annotated[str, Field(max_length=EXTERNAL_ID_MAX)] | None, BeforeValidator(_one_line_or_none)]
Email = Annotated[
    Annotated[str, Field(max_length=EMAIL_MAX), AfterValidator(normalize_email)] | None,
    BeforeValidator(_blank_to_none),
]


class ContactFields(BaseModel):
    """A contact as sent by a caller; every field optional here, required ones checked by parse_contact."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text64 = None
    title: Text64 = None
    email: Email = None
    phone: Text32 = None
    extension: Text32 = None
    mobile: Text32 = None
    department: Text64 = None
    location: Text128 = None
    notes: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    important: bool | None = None
    billing: bool | None = None
    technical: bool | None = None
    auth_method: Literal["local", "sso"] | None = None
    active: bool | None = None
    client_id: Annotated[int, Field(ge=1, le=ID_MAX)] | None = None
    external_id: Text191 = None


# Fields that cannot be cleared: null is refused instead of clearing them.
NOT_NULL = ("name", "important", "billing", "technical", "auth_method", "active")
DEFAULTS: dict[str, Any] = {"important": False, "billing": False, "technical": False, "auth_method": "local"}


def errors_by_field(exc: ValidationError) -> dict[str, str]:
    """pydantic's errors as {field: why}, one entry per failing field."""
    fields: dict[str, str] = {}
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        fields.setdefault(key, message)
    return fields


def parse_contact(data: Mapping[str, Any], *, partial: bool, mobile_e164: bool) -> dict[str, Any]:
    """The fields the caller sent, validated and normalised; raise InvalidInput listing every bad field.

    partial=False (create): name is required and omitted fields get their defaults.  partial=True
    (PATCH, upsert of an existing contact): only the sent fields are returned; null clears a field.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("a JSON object is expected", {"body": "must be an object"})
    fields: dict[str, str] = {}
    values: dict[str, Any] = {}
    try:
        model = ContactFields.model_validate(dict(data))
        values = {name: getattr(model, name) for name in model.model_fields_set}
    except ValidationError as exc:
        fields = errors_by_field(exc)
    for name in NOT_NULL:
        if name in data and data[name] is None and name not in fields:
            fields[name] = "may not be null"
    if not partial and "name" not in fields and _blank_to_none(data.get("name")) is None:
        fields["name"] = "required"
    if mobile_e164 and "mobile" not in fields and not _is_e164_or_blank(data.get("mobile")):
        fields["mobile"] = "must be in E.164 form: + and the country code, digits only, no spaces"
    if fields:
        raise InvalidInput("the contact is not valid", fields)
    if not partial:
        values = {**DEFAULTS, **values}
    return values


def _is_e164_or_blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip() or E164.match(value.strip()) is not None


def require_name(value: str, *, field: str = "name", max_length: int) -> str:
    """A required one-line name (client, agent)."""
    text = value.strip()
    if not text:
        raise InvalidInput(f"{field} is required", {field: "required"})
    if len(text) > max_length:
        raise InvalidInput(f"{field} is too long", {field: f"at most {max_length} characters"})
    try:
        return one_line(text)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not valid", {field: str(exc)}) from exc


def parse_domains(values: list[str]) -> list[str]:
    """Normalised domains, de-duplicated in order; every bad one reported."""
    result: list[str] = []
    bad: list[str] = []
    for value in values:
        try:
            domain = normalize_domain(value)
        except ValueError:
            bad.append(value)
            continue
        if domain not in result:
            result.append(domain)
    if bad:
        raise InvalidInput("invalid domain", {"domains": "not valid: " + ", ".join(map(repr, bad))})
    return result


def digits(value: str) -> str:
    """Only the digits of a phone number, for comparing numbers written differently."""
    return "".join(ch for ch in value if ch.isdigit())


class ClientFields(BaseModel):
    """A new client as the API receives it."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=CLIENT_NAME_MAX), AfterValidator(one_line)]
    domains: Annotated[list[Annotated[str, Field(max_length=DOMAIN_MAX)]], Field(max_length=100)] = []
    force: bool = False  # register a public mail provider's domain all the same


class ClientChanges(BaseModel):
    """A client's PATCH: a field given changes (notes null clears them), a field omitted stays."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=CLIENT_NAME_MAX), AfterValidator(one_line)] = ""
    notes: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    active: bool = True  # False deactivates: its domains and contacts are no longer known senders


class DomainFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: Annotated[str, Field(min_length=1, max_length=DOMAIN_MAX)]
    force: bool = False  # register a public mail provider's domain all the same


class AgentFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=AGENT_NAME_MAX), AfterValidator(one_line)]
    email: Annotated[str, Field(max_length=EMAIL_MAX), AfterValidator(normalize_email)]
    aliases: list[Annotated[str, Field(max_length=EMAIL_MAX), AfterValidator(normalize_email)]] = []


class AliasFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: Annotated[str, Field(max_length=EMAIL_MAX), AfterValidator(normalize_email)]


def parse_model(model: type[M], data: Mapping[str, Any], what: str) -> M:
    """`data` validated by `model`; InvalidInput listing every failing field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"the {what} is not valid", errors_by_field(exc)) from exc
