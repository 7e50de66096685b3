"""The HTTP API (FastAPI): contacts, clients, agents, tickets, rules and the quarantine under /api/v1."""

from mailtickets.api.app import create_app

__all__ = ["create_app"]
