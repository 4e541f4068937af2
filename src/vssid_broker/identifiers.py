"""The identifiers of a person in Vietnam's social insurance, and how they may be shown.

- the citizen ID ("số định danh cá nhân", on the chip ID card, CCCD): 12 digits;
- the social-insurance code ("mã số BHXH"): 10 digits.
Both single out a person among 32 million: never in full in a log or an audit detail.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date

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
    # Word by word, each word's form remembered: a name is a few of a few thousand syllables,
    # and an import computes this for every row.
    return " ".join(word for word in map(_searchable_word, name.split()) if word)


@functools.lru_cache(maxsize=1 << 16)
def _searchable_word(word: str) -> str:
    # đ has no decomposition: it is a letter of its own, written d without the bar.
    text = unicodedata.normalize("NFKD", word.replace("đ", "d").replace("Đ", "D")).casefold()
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(_NOT_SEARCHABLE.sub(" ", text).split())


# Place-of-birth-registration codes of the 63 provinces (Circular 07/2016/TT-BCA, Appendix I):
# the first three digits of a citizen ID. A BHXH code starts with the same province's two
# digits (the code without its leading 0). Numbers issued before the 2025 merger keep them.
PROVINCE_PLACE_CODES = frozenset(
    f"{number:03d}"
    for number in (
        1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35,
        36, 37, 38, 40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70,
        72, 74, 75, 77, 79, 80, 82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96,
    )
)  # fmt: skip
BHXH_PROVINCE_PREFIXES = frozenset(code[1:] for code in PROVINCE_PLACE_CODES)
# Vietnamese mobile numbers since the 2018 move to 10 digits: 03, 05, 07, 08, 09 (the broad
# prefix check: carriers' ranges drift as virtual operators appear), or +84 for the 0.
VIETNAMESE_MOBILE = re.compile(r"^(?:\+84|84|0)([35789]\d{8})$")


def citizen_id_problem(citizen_id: str, birth_date: date, gender: str) -> str | None:
    """Why a citizen ID cannot be this person's (a reason code), or None when it can: 12
    digits, a real province's place code, the century/gender digit and the two year digits
    agreeing with the birth date and gender (Decree 137/2015, Art. 7; the digit is even for
    men, odd for women, +2 per century from 1900). It has no checksum."""
    if not CITIZEN_ID.match(citizen_id):
        return "format"
    if citizen_id[:3] not in PROVINCE_PLACE_CODES:
        return "place_code"
    century_index = birth_date.year // 100 - 19
    expected = century_index * 2 + (1 if gender == "female" else 0)
    if not 0 <= century_index <= 4 or int(citizen_id[3]) != expected:
        return "century_gender_digit"
    if citizen_id[4:6] != f"{birth_date.year % 100:02d}":
        return "birth_year"
    return None


def bhxh_code_problem(code: str) -> str | None:
    """Why a BHXH code is not one (a reason code), or None: 10 digits, a province prefix."""
    if not BHXH_CODE.match(code):
        return "format"
    if code[:2] not in BHXH_PROVINCE_PREFIXES:
        return "province_prefix"
    return None


def vietnamese_mobile(phone: str) -> str | None:
    """The number in its 10-digit national form (0xxxxxxxxx), or None when it is not a
    Vietnamese mobile number."""
    match = VIETNAMESE_MOBILE.match(phone.replace(" ", "").replace(".", ""))
    return None if match is None else "0" + match[1]
