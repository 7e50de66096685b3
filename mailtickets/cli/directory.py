"""`mailtickets clients|contacts|agents`: the directory from the command line (a stable contract)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets import directory
from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.db import transaction
from mailtickets.directory.accounts import generate_password, set_password
from mailtickets.directory.agents import set_agent_active
from mailtickets.directory.contacts import set_contact_active
from mailtickets.directory.views import agent_view, client_view, contact_view
from mailtickets.errors import NotFound
from mailtickets.models import AgentRole

Sessions = async_sessionmaker[AsyncSession]


FORCE_HELP = "Register a public mail provider's domain (gmail.com…) all the same: all its users become this client's."

ActiveSetter = Callable[[AsyncSession, str, bool], Awaitable[object]]


@click.group()
def clients() -> None:
    """Clients and their registered email domains."""


@clients.command("add")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, help="A registered domain (repeatable).")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@pass_state
def clients_add(state: CliState, name: str, domains: tuple[str, ...], force: bool) -> None:
    """Add a client NAME with its domains."""

    async def work(sessions: Sessions) -> dict[str, Any]:
        async with transaction(sessions) as session:
            client = await directory.create_client(session, name, list(domains), force=force)
            return client_view(client).model_dump(mode="json")

    row = run_with_store(state.settings, work)
    click.echo(f"client {row['id']}: {row['name']} ({', '.join(row['domains']) or 'no domains'})")


@clients.command("add-domain")
@click.argument("name")
@click.argument("domain")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@pass_state
def clients_add_domain(state: CliState, name: str, domain: str, force: bool) -> None:
    """Register one more DOMAIN for the client NAME."""

    async def work(sessions: Sessions) -> str:
        async with transaction(sessions) as session:
            client = await directory.get_client_by_name(session, name)
            return (await directory.add_domain(session, client.id, domain, force=force)).domain

    click.echo(f"{run_with_store(state.settings, work)} belongs to {name}")


@clients.command("remove-domain")
@click.argument("name")
@click.argument("domain")
@pass_state
def clients_remove_domain(state: CliState, name: str, domain: str) -> None:
    """Stop matching mail from DOMAIN to the client NAME (its contacts and tickets stay)."""

    async def work(sessions: Sessions) -> None:
        async with transaction(sessions) as session:
            client = await directory.get_client_by_name(session, name)
            await directory.remove_domain(session, client.id, domain)

    run_with_store(state.settings, work)
    click.echo(f"{domain} no longer belongs to {name}")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@click.option(
    "--state",
    "which",
    type=click.Choice(["all", "active", "inactive"]),
    default="all",
    show_default=True,
    help="Only the active or only the deactivated clients.",
)
@pass_state
def clients_list(state: CliState, as_json: bool, which: str) -> None:
    """List clients with their domains (a deactivated one is marked so)."""
    active = {"all": None, "active": True, "inactive": False}[which]

    async def work(sessions: Sessions) -> list[dict[str, Any]]:
        async with transaction(sessions) as session:
            found = await directory.list_clients(session, active=active)
            return [client_view(c).model_dump(mode="json") for c in found]

    rows = run_with_store(state.settings, work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        mark = "" if row["active"] else "\tdeactivated"
        click.echo(f"{row['id']}\t{row['name']}\t{', '.join(row['domains'])}{mark}")


def _client_activation(verb: str, active: bool, note: str) -> click.Command:
    @click.command(verb, help=f"{verb.capitalize()} the client NAME. {note}".strip())
    @click.argument("name")
    @pass_state
    def command(state: CliState, name: str) -> None:
        async def work(sessions: Sessions) -> str:
            async with transaction(sessions) as session:
                client = await directory.get_client_by_name(session, name)
                return (await directory.set_client_active(session, client.id, active)).name

        click.echo(f"client {run_with_store(state.settings, work)} {verb}d")

    return command


clients.add_command(
    _client_activation(
        "deactivate",
        False,
        "Mail from its domains and contacts is then handled as an unknown sender's (see unknown_sender);"
        " its tickets, contacts and domains stay.",
    )
)
clients.add_command(_client_activation("activate", True, "Its domains and contacts are known senders again."))


@click.group()
def contacts() -> None:
    """Contacts of clients."""


@contacts.command("add")
@click.option("--client", "client_name", required=True, help="The client's name.")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--title")
@click.option("--phone")
@click.option("--extension")
@click.option("--mobile")
@click.option("--department")
@click.option("--location")
@click.option("--notes")
@click.option("--external-id", help="The contact's id in your PSA or CRM.")
@click.option("--important", is_flag=True)
@click.option("--billing", is_flag=True)
@click.option("--technical", is_flag=True)
@click.option("--auth-method", type=click.Choice(["local", "sso"]), default="local", show_default=True)
@pass_state
def contacts_add(state: CliState, /, client_name: str, **fields: Any) -> None:
    """Add a contact to a client."""
    data = {key: value for key, value in fields.items() if value is not None}

    async def work(sessions: Sessions) -> dict[str, Any]:
        async with transaction(sessions) as session:
            client = await directory.get_client_by_name(session, client_name)
            contact = await directory.create_contact(
                session, {**data, "client_id": client.id}, mobile_e164=state.settings.contact_mobile_e164
            )
            return contact_view(contact).model_dump(mode="json")

    row = run_with_store(state.settings, work)
    click.echo(f"contact {row['id']}: {row['name']} <{row['email']}> ({row['client']})")


@contacts.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@pass_state
def contacts_list(state: CliState, as_json: bool) -> None:
    """List contacts."""

    async def work(sessions: Sessions) -> list[dict[str, Any]]:
        async with transaction(sessions) as session:
            return [contact_view(c).model_dump(mode="json") for c in await directory.list_contacts(session)]

    rows = run_with_store(state.settings, work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['name']}\t{row['email'] or ''}\t{row['client'] or ''}")


@click.group()
def agents() -> None:
    """Agents who answer tickets."""


@agents.command("add")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--alias", "aliases", multiple=True, help="Another address the agent writes from (repeatable).")
@click.option(
    "--role",
    type=click.Choice([r.value for r in AgentRole]),
    default="agent",
    show_default=True,
    help="admin: may also change rules, clients, contacts and agents in the console.",
)
@pass_state
def agents_add(state: CliState, name: str, email: str, aliases: tuple[str, ...], role: str) -> None:
    """Add an agent (set a console password with `agents set-password`)."""

    async def work(sessions: Sessions) -> dict[str, Any]:
        async with transaction(sessions) as session:
            agent = await directory.create_agent(session, name, email, AgentRole(role), aliases)
            return agent_view(agent).model_dump(mode="json")

    row = run_with_store(state.settings, work)
    also = f" (also {', '.join(row['aliases'])})" if row["aliases"] else ""
    click.echo(f"agent {row['id']}: {row['name']} <{row['email']}>{also}")


@agents.group("alias")
def agents_alias() -> None:
    """Other addresses an agent writes from."""


def _change_alias(state: CliState, email: str, alias: str, *, add: bool) -> None:
    async def work(sessions: Sessions) -> None:
        async with transaction(sessions) as session:
            agent = await directory.find_agent_by_email(session, email)
            if agent is None:
                raise NotFound(f"no agent {email}")
            change = directory.add_alias if add else directory.remove_alias
            await change(session, agent, alias)

    run_with_store(state.settings, work)
    click.echo(f"{alias} {'is now' if add else 'is no longer'} an alias of {email}")


@agents_alias.command("add")
@click.argument("email")
@click.argument("alias")
@pass_state
def agents_alias_add(state: CliState, email: str, alias: str) -> None:
    """Let the agent EMAIL also write from ALIAS."""
    _change_alias(state, email, alias, add=True)


@agents_alias.command("remove")
@click.argument("email")
@click.argument("alias")
@pass_state
def agents_alias_remove(state: CliState, email: str, alias: str) -> None:
    """ALIAS is no longer an address of the agent EMAIL."""
    _change_alias(state, email, alias, add=False)


@agents.command("set-password")
@click.argument("email")
@click.option("--generate", is_flag=True, help="Make a one-time password and print it (instead of prompting).")
@pass_state
def agents_set_password(state: CliState, email: str, generate: bool) -> None:
    """Set the console password of the agent EMAIL (prompted twice, never echoed)."""
    password = generate_password() if generate else click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(sessions: Sessions) -> str:
        async with transaction(sessions) as session:
            return (await set_password(session, email, password)).email

    address = run_with_store(state.settings, work)
    if generate:
        click.echo(f"one-time password for {address}; hand it over now, it is not shown again:")
        click.echo(password)
    else:
        click.echo(f"password set for {address}")


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@pass_state
def agents_list(state: CliState, as_json: bool) -> None:
    """List agents."""

    async def work(sessions: Sessions) -> list[dict[str, Any]]:
        async with transaction(sessions) as session:
            return [agent_view(a).model_dump(mode="json") for a in await directory.list_agents(session)]

    rows = run_with_store(state.settings, work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['name']}\t{row['email']}\t{row['role']}\t{', '.join(row['aliases'])}")


def activation_commands(group: click.Group, what: str, setter: ActiveSetter, gone: str) -> None:
    """`GROUP deactivate EMAIL` and `GROUP activate EMAIL`: someone who left, kept on their tickets."""
    for verb, active in (("deactivate", False), ("activate", True)):
        group.add_command(_activation_command(what, verb, active, setter, "" if active else gone))


def _activation_command(what: str, verb: str, active: bool, setter: ActiveSetter, note: str) -> click.Command:
    @click.command(verb, help=f"{verb.capitalize()} the {what} with EMAIL. {note}".strip())
    @click.argument("email")
    @pass_state
    def command(state: CliState, email: str) -> None:
        async def work(sessions: Sessions) -> None:
            async with transaction(sessions) as session:
                await setter(session, email, active)

        run_with_store(state.settings, work)
        click.echo(f"{what} {email.strip()} {verb}d")

    return command


activation_commands(
    contacts, "contact", set_contact_active, "It stays on its tickets; its mail is matched by domain only."
)
activation_commands(agents, "agent", set_agent_active, "Their tickets and history stay.")

COMMANDS = [clients, contacts, agents]
