"""Admins' regular expressions, compiled with RE2: linear-time matching, bounded memory, no backtracking.

A pattern RE2 refuses (backreferences, lookaround, too large) is a validation problem, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import re2

MAX_REGEX_MEMORY: Final = 2 * 1024 * 1024  # RE2's budget for one compiled pattern


class PatternRefused(ValueError):
    pass


def compile_pattern(pattern: str) -> Callable[[bytes], bool]:
    """A case-insensitive search test over UTF-8 text; raises PatternRefused with RE2's reason.

    Patterns and texts are UTF-8 bytes: the binding's str path re-encodes the text on every call.
    """
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is reported to the admin, not to stderr
    options.max_mem = MAX_REGEX_MEMORY
    options.never_capture = True  # only "does it match" is asked: lets RE2 stay on its DFA
    try:
        search: Callable[[bytes], Any] = re2.compile(pattern.encode(), options).search
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise PatternRefused(reason.decode() if isinstance(reason, bytes) else str(reason)) from exc
    return lambda value: search(value) is not None
