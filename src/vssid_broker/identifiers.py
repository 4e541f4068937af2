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


def mask_bhxh_code(code: str) -> str:
    """Keep the two province digits and the last two: a BHXH code is for life, like the ID."""
    return f"{code[:2]}******{code[-2:]}" if len(code) == 10 else "***"


def mask_identifier(typed: str) -> str:
    """What an audit detail may keep of something a person typed as their identifier: a
    citizen ID or a BHXH code masked as such; anything else (a mistyped one is nearly a real
    one) only its shape."""
    if CITIZEN_ID.match(typed):
        return mask_citizen_id(typed)
    if BHXH_CODE.match(typed):
        return mask_bhxh_code(typed)
    return f"[{len(typed)} characters]"


_CITIZEN_ID_RUN = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")
_BHXH_CODE_RUN = re.compile(r"(?<!\d)(\d{2})\d{6}(\d{2})(?!\d)")
_SPACED_CITIZEN_ID = re.compile(r"(?<![\d+])\d{3}(?:[ .-]\d{3}){3}(?!\d)")
"""A citizen ID as people write it by hand: 001 085 012 345."""
_PHONE_NUMBER = re.compile(r"(?<![\d+])(?:\+84|84|0)(?:[ .-]?\d){9}(?!\d)")
"""A Vietnamese phone number: 0912345678, 0912 345 678, 0912.345.678, +84 912 345 678."""


def _mask_digits_but_last_two(match: re.Match[str]) -> str:
    digits = [c for c in match.group() if c.isdigit()]
    return f"{match.group()[:3]}******{''.join(digits[-2:])}"


def mask_identifiers_in(text: str) -> str:
    """Mask every citizen ID, BHXH code and phone number in free text (runs of 12 or 10
    digits, and the spaced and international forms people type): what staff write in a
    decision's reason, and the last guard of the audit details."""
    text = _SPACED_CITIZEN_ID.sub(_mask_digits_but_last_two, text)
    text = _CITIZEN_ID_RUN.sub(r"\1******\2", text)
    text = _PHONE_NUMBER.sub(_mask_digits_but_last_two, text)
    return _BHXH_CODE_RUN.sub(r"\1******\2", text)


def normalized_name(name: str) -> str:
    """Compare names as VNeID and the agency write them: same letters and diacritics, any case
    and spacing. Diacritics matter in Vietnamese names (Hà and Hạ are different people)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


_NOT_SEARCHABLE = re.compile(r"[^a-z0-9 ]+")


def searchable_name(name: str) -> str:
    """A name as a clerk may type it: no diacritics, any case and spacing ("pham thi dung"
    for "Phạm Thị Dung"). Only for finding people; linking compares `normalized_name`, where
    diacritics count. Only a-z, 0-9 and single spaces remain, so a prefix has a plain
    byte-ordered range (`accounts.service.search`)."""
    # đ has no decomposition: it is a letter of its own, written d without the bar.
    text = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D")).casefold()
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(_NOT_SEARCHABLE.sub(" ", text).split())
