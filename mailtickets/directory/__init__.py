"""The directory: clients with their domains, their contacts, and agents.

Service functions take an AsyncSession and run inside the caller's transaction; field rules live in
`validation`, shared by the CLI and the HTTP API.
"""

from mailtickets.directory.agents import (
    add_alias,
    create_agent,
    find_agent_by_email,
    get_agent,
    list_agents,
    remove_alias,
)
from mailtickets.directory.clients import (
    add_domain,
    change_client,
    count_clients,
    create_client,
    get_client,
    get_client_by_name,
    list_clients,
    remove_domain,
    set_client_active,
    update_client,
)
from mailtickets.directory.contacts import (
    ContactQuery,
    Page,
    create_contact,
    delete_contact,
    find_contact_by_email,
    find_contacts,
    get_contact,
    get_contact_by_external_id,
    list_contacts,
    update_contact,
    upsert_contact,
)
from mailtickets.directory.validation import FieldConflict

__all__ = [
    "ContactQuery",
    "FieldConflict",
    "Page",
    "add_alias",
    "add_domain",
    "change_client",
    "count_clients",
    "create_agent",
    "create_client",
    "create_contact",
    "delete_contact",
    "find_agent_by_email",
    "find_contact_by_email",
    "find_contacts",
    "get_agent",
    "get_client",
    "get_client_by_name",
    "get_contact",
    "get_contact_by_external_id",
    "list_agents",
    "list_clients",
    "list_contacts",
    "remove_alias",
    "remove_domain",
    "set_client_active",
    "update_client",
    "update_contact",
    "upsert_contact",
]
