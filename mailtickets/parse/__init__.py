"""Parsing: raw bytes in, a frozen ParsedMessage out. No I/O, no database, no asyncio."""

from mailtickets.parse.message import ParsedAttachment, ParsedMessage
from mailtickets.parse.parser import parse_message

__all__ = ["ParsedAttachment", "ParsedMessage", "parse_message"]
