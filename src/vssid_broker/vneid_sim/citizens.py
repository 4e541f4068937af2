"""Test citizens: the data model, the shipped file, ID-structure checks and a generator."""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from .config import SHIPPED_CITIZENS_FILE

Gender = Literal["male", "female"]

# Place-of-birth-registration codes of the 63 provinces (Circular 07/2016/TT-BCA, Appendix I).
# Numbers issued before the 2025 merger keep these codes for life.
PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hoà Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hoá", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hoà", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu", "079": "TP Hồ Chí Minh", "080": "Long An",
    "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long",
    "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}  # fmt: skip

CITIZEN_ID_PATTERN = re.compile(r"^(?P<place>\d{3})(?P<cg>\d)(?P<yy>\d{2})(?P<serial>\d{6})$")
# Vietnamese mobile numbers after the 2018 move to 10 digits (broad prefix check).
PHONE_PATTERN = re.compile(r"^0[35789]\d{8}$")


def century_gender_digit(birthdate: date, gender: Gender) -> int:
    """The 4th digit of a citizen ID: even for men, odd for women, +2 per century from 1900."""
    century_index = birthdate.year // 100 - 19
    if not 0 <= century_index <= 4:
        raise ValueError(f"birth year {birthdate.year} outside 1900-2399")
    return century_index * 2 + (1 if gender == "female" else 0)


def validate_citizen_id(citizen_id: str, birthdate: date | str, gender: str) -> None:
    """Raise ValueError unless `citizen_id` has the real 12-digit structure and agrees with
    the birth date and gender (place code of a real province, century/gender digit, year)."""
    born = date.fromisoformat(birthdate) if isinstance(birthdate, str) else birthdate
    if gender not in ("male", "female"):
        raise ValueError(f"gender must be male or female, not {gender!r}")
    match = CITIZEN_ID_PATTERN.fullmatch(citizen_id)
    if match is None:
        raise ValueError("citizen ID must be exactly 12 digits")
    if match["place"] not in PROVINCE_CODES:
        raise ValueError(f"{match['place']} is not a province code")
    expected_digit = century_gender_digit(born, gender)  # type: ignore[arg-type]
    if int(match["cg"]) != expected_digit:
        raise ValueError(
            f"century/gender digit is {match['cg']}, expected {expected_digit} for a "
            f"{gender} born in {born.year}"
        )
    if match["yy"] != f"{born.year % 100:02d}":
        raise ValueError(f"year digits {match['yy']} do not match birth year {born.year}")


class Citizen(BaseModel):
    """A person known to the simulated VNeID."""

    model_config = ConfigDict(frozen=True)

    citizen_id: str
    sub: uuid.UUID
    full_name: str = Field(min_length=1)
    birthdate: date
    gender: Gender
    level: Literal[1, 2]
    locked: bool = False
    passcode: str = Field(min_length=1)
    phone: str
    note: str = ""

    @field_validator("phone")
    @classmethod
    def _phone_is_vietnamese_mobile(cls, value: str) -> str:
        if not PHONE_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not a Vietnamese mobile number")
        return value

    @model_validator(mode="after")
    def _id_matches_birthdate_and_gender(self) -> Citizen:
        validate_citizen_id(self.citizen_id, self.birthdate, self.gender)
        return self

    @property
    def acr(self) -> str:
        return f"LoA{self.level}"

    @property
    def masked_phone(self) -> str:
        return self.phone[:3] + "*" * (len(self.phone) - 5) + self.phone[-2:]

    def identity_claims(self) -> dict[str, str]:
        """Claims shared with a relying party, in both OIDC and national-portal style."""
        return {
            "name": self.full_name,
            "birthdate": self.birthdate.isoformat(),
            "gender": self.gender,
            "SoDinhDanh": self.citizen_id,
            "HoVaTen": self.full_name,
            "NgayThangNamSinh": self.birthdate.strftime("%Y%m%d"),
        }


SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": (),
    "profile": ("name", "birthdate", "gender", "HoVaTen", "NgayThangNamSinh"),
    "citizen_id": ("SoDinhDanh",),
}
"""What each scope releases (OIDC Core §5.4 for `profile`; `citizen_id` is VNeID's own): a
claim no granted scope covers is never released."""


def released_claims(citizen: Citizen, scope: str) -> dict[str, str]:
    """The citizen's identity claims that the granted `scope` covers."""
    covered = {name for granted in scope.split() for name in SCOPE_CLAIMS.get(granted, ())}
    return {name: value for name, value in citizen.identity_claims().items() if name in covered}


_citizen_list = TypeAdapter(list[Citizen])


def load_citizens(path: Path = SHIPPED_CITIZENS_FILE) -> list[Citizen]:
    """Read and validate a citizens file; IDs and subjects must be unique."""
    citizens = _citizen_list.validate_json(path.read_bytes())
    check_unique(citizens)
    return citizens


def check_unique(citizens: list[Citizen]) -> None:
    ids = [c.citizen_id for c in citizens]
    subs = [c.sub for c in citizens]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate citizen_id in citizens file")
    if len(set(subs)) != len(subs):
        raise ValueError("duplicate sub in citizens file")


def dump_citizens(citizens: list[Citizen]) -> str:
    return json.dumps([c.model_dump(mode="json") for c in citizens], ensure_ascii=False, indent=2)


_FAMILY_NAMES = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
    "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Mai", "Cao",
]  # fmt: skip
_MIDDLE_NAMES = {
    "male": ["Văn", "Minh", "Quốc", "Đức", "Hữu", "Công", "Thành", "Hoàng"],
    "female": ["Thị", "Ngọc", "Thu", "Thanh", "Mai", "Kim", "Bích", "Hồng"],
}
_GIVEN_NAMES = {
    "male": ["An", "Bảo", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phúc",
             "Quân", "Sơn", "Tài", "Thắng", "Tuấn", "Việt"],
    "female": ["Anh", "Bình", "Chi", "Dung", "Giang", "Hà", "Hương", "Lan", "Linh", "Mai",
               "Ngân", "Nhung", "Phương", "Thảo", "Trang", "Yến"],
}  # fmt: skip
_PHONE_PREFIXES = ["032", "035", "038", "056", "070", "077", "081", "086", "090", "091", "098"]


def generate_citizens(n: int, seed: int = 0) -> list[Citizen]:
    """Make `n` unique, structurally valid synthetic citizens; the same seed gives the same list.

    Serial numbers start with 9 so generated IDs never collide with the shipped file.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    provinces = sorted(PROVINCE_CODES)
    earliest, span_days = date(1950, 1, 1), (date(2011, 12, 31) - date(1950, 1, 1)).days
    citizens: list[Citizen] = []
    seen: set[str] = set()
    while len(citizens) < n:
        gender: Gender = "male" if rng.random() < 0.5 else "female"
        born = earliest + timedelta(days=rng.randrange(span_days + 1))
        place = rng.choice(provinces)
        serial = f"9{rng.randrange(100_000):05d}"
        citizen_id = f"{place}{century_gender_digit(born, gender)}{born.year % 100:02d}{serial}"
        if citizen_id in seen:
            continue
        seen.add(citizen_id)
        name = " ".join(
            [
                rng.choice(_FAMILY_NAMES),
                rng.choice(_MIDDLE_NAMES[gender]),
                rng.choice(_GIVEN_NAMES[gender]),
            ]
        )
        citizens.append(
            Citizen(
                citizen_id=citizen_id,
                sub=uuid.UUID(int=rng.getrandbits(128), version=4),
                full_name=name,
                birthdate=born,
                gender=gender,
                level=2 if rng.random() < 0.9 else 1,
                locked=rng.random() < 0.01,
                passcode="Vneid@123",
                phone=rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10_000_000):07d}",
                note=f"Công dân tổng hợp #{len(citizens) + 1} / synthetic citizen for load tests",
            )
        )
    return citizens
