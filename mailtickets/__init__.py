"""mailtickets: turn email into helpdesk tickets, fast and without losing or doubling a message."""

__version__ = "0.1.0"
