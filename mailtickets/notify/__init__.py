"""Outgoing mail: templates, the durable outbox, the SMTP sender, signed Message-IDs."""
