"""Tickets: numbering, the service layer that every entry point calls, and the events it emits."""
