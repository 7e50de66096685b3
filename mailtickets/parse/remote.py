"""Remote resources in stored HTML: a tracking pixel tells the sender when, where and that an agent read it.

By default stored HTML keeps no remote resource: `src`, `srcset`, `background` and `poster` that do not
point at a part of the message itself (`cid:`) are removed. Links (`href`) stay: they load nothing.
"""

from __future__ import annotations

import nh3

INLINE_SCHEMES = frozenset({"cid"})  # a part of this very message (inline images)
URL_SCHEMES = frozenset(nh3.ALLOWED_URL_SCHEMES) | INLINE_SCHEMES
_LOADING_ATTRIBUTES = frozenset({"src", "srcset", "background", "poster", "lowsrc", "dynsrc"})


def _inline_only(tag: str, attribute: str, value: str) -> str | None:
    if attribute in _LOADING_ATTRIBUTES and not value.strip().lower().startswith("cid:"):
        return None
    return value


def without_remote_resources(html: str) -> str:
    """Already sanitised HTML with every resource that would be fetched from elsewhere removed."""
    return nh3.clean(html, url_schemes=set(URL_SCHEMES), attribute_filter=_inline_only)
