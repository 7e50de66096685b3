"""Sender matching: who wrote this message, as far as our contacts and client domains tell."""
