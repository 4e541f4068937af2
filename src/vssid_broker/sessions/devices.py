"""A device as a person recognises it in their list of sessions ("Chrome trên Android 14"),
from the User-Agent it signed in with, read by ua-parser (the maintained port of the
uap-core rules that browsers' vendors keep current)."""

from __future__ import annotations

from functools import lru_cache

import ua_parser

UNKNOWN_DEVICE = "Thiết bị không rõ"
_FAMILY_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "HeadlessChrome": "Chrome",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Mac OS X": "macOS",
}
"""uap-core names a mobile build apart; people know it by the browser's own name."""


def _named(family: str, major: str | None = None) -> str:
    name = _FAMILY_NAMES.get(family, family)
    return f"{name} {major}" if major else name


@lru_cache(maxsize=1024)
def device_name(user_agent: str | None) -> str:
    """ "Chrome trên Android 14", "Safari trên iOS 17", "Android 14" (an app that names only
    its system), or "Thiết bị không rõ"."""
    if not user_agent:
        return UNKNOWN_DEVICE
    found = ua_parser.parse(user_agent[:512])
    browser = found.user_agent.family if found.user_agent else None
    system_family = found.os.family if found.os else None
    system = _named(found.os.family, found.os.major) if found.os else None
    if browser and system and browser != system_family:
        return f"{_named(browser)} trên {system}"
    if system:
        return system
    return _named(browser) if browser else UNKNOWN_DEVICE
