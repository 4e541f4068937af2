"""The identifiers of a person in Vietnam's social insurance, and how they may be shown.

- the citizen ID ("số định danh cá nhân", on the chip ID card, CCCD): 12 digits;
- the social-insurance code ("mã số BHXH"): 10 digits.
Both single out a person among 32 million: never in full in a log or an audit detail.
"""

from __future__ import annotations

import re
import unicodedata

CITIZEN_ID = re.compile(r"^\d{12}$")
BHXH_CODE = re.compile(r"^\d{10}$")


def mask_citizen_id(citizen_id: str) -> str:
    """Keep the province code and the last three digits: enough for support, not for abuse."""
    return f"{citizen_id[:3]}******{citizen_id[-3:]}" if len(citizen_id) == 12 else "***"


def normalized_name(name: str) -> str:
    """Compare names as VNeID and the agency write them: same letters and diacritics, any case
    and spacing. Diacritics matter in Vietnamese names (Hà and Hạ are different people)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())
