from __future__ import annotations

from datetime import date

import pytest

from vssid_broker.vneid_sim.citizens import (
    CITIZEN_ID_PATTERN,
    PROVINCE_CODES,
    generate_citizens,
    load_citizens,
    validate_citizen_id,
)

REQUIRED = {
    # citizen_id: (full_name, gender, birthdate, level, locked)
    "001085012345": ("Nguyễn Văn An", "male", "1985-03-12", 2, False),
    "079190123456": ("Trần Thị Bình", "female", "1990-07-25", 1, False),
    "048095000111": ("Lê Hoàng Cường", "male", "1995-11-02", 2, False),
    "031188004567": ("Phạm Thị Dung", "female", "1988-01-30", 2, False),
    "092087007788": ("Hoàng Văn Em", "male", "1987-05-05", 2, False),
    "038192003344": ("Vũ Thị Giang", "female", "1992-09-14", 2, True),
    "001310004321": ("Đỗ Minh Hà", "female", "2010-04-18", 2, False),
    "046075001122": ("Bùi Văn Khoa", "male", "1975-12-01", 2, False),
    "040183002233": ("Ngô Thị Lan", "female", "1983-06-20", 2, False),
}


def test_shipped_file_has_the_required_citizens_exactly() -> None:
    citizens = {c.citizen_id: c for c in load_citizens()}
    assert len(citizens) >= 22
    for citizen_id, (name, gender, born, level, locked) in REQUIRED.items():
        citizen = citizens[citizen_id]
        assert (citizen.full_name, citizen.gender, citizen.birthdate.isoformat()) == (
            name,
            gender,
            born,
        )
        assert (citizen.level, citizen.locked) == (level, locked)


def test_every_shipped_citizen_is_structurally_valid_and_unique() -> None:
    citizens = load_citizens()
    for citizen in citizens:
        validate_citizen_id(citizen.citizen_id, citizen.birthdate, citizen.gender)
        assert citizen.passcode == "Vneid@123"
        assert citizen.note and "/" in citizen.note  # Vietnamese / English
        # Generated citizens use serials starting with 9; the shipped ones must not.
        assert not citizen.citizen_id[6:].startswith("9")
    assert len({c.citizen_id for c in citizens}) == len(citizens)
    assert len({c.sub for c in citizens}) == len(citizens)
    assert {c.level for c in citizens} == {1, 2}


@pytest.mark.parametrize(
    ("citizen_id", "birthdate", "gender", "problem"),
    [
        ("00108501234", "1985-03-12", "male", "12 digits"),
        ("00108501234a", "1985-03-12", "male", "12 digits"),
        ("003085012345", "1985-03-12", "male", "province"),  # 003 is not a province
        ("001185012345", "1985-03-12", "male", "century/gender"),  # 1 = woman of the 1900s
        ("001285012345", "1985-03-12", "male", "century/gender"),  # 2 = man of the 2000s
        ("001086012345", "1985-03-12", "male", "year digits"),
        ("001210004321", "2010-04-18", "female", "century/gender"),
    ],
)
def test_validate_citizen_id_refuses(
    citizen_id: str, birthdate: str, gender: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_citizen_id(citizen_id, birthdate, gender)


def test_validate_citizen_id_accepts_both_centuries() -> None:
    validate_citizen_id("001310004321", date(2010, 4, 18), "female")
    validate_citizen_id("079200000001", "2000-01-01", "male")
    validate_citizen_id("096199000001", "1999-12-31", "female")


def test_generator_makes_ten_thousand_unique_valid_citizens_deterministically() -> None:
    first = generate_citizens(10_000, seed=7)
    assert len(first) == 10_000
    assert len({c.citizen_id for c in first}) == 10_000
    assert len({c.sub for c in first}) == 10_000
    for citizen in first:
        match = CITIZEN_ID_PATTERN.fullmatch(citizen.citizen_id)
        assert match is not None and match["place"] in PROVINCE_CODES
    assert first == generate_citizens(10_000, seed=7)
    assert first[:50] != generate_citizens(50, seed=8)
    shipped = {c.citizen_id for c in load_citizens()}
    assert not shipped & {c.citizen_id for c in first}
