"""Claims mapping by configuration: the real VNeID's names are not public."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from vssid_broker.config import Settings
from vssid_broker.errors.login import ClaimsIncomplete
from vssid_broker.federation.claims import map_identity
from vssid_broker.identifiers import mask_citizen_id

BASE = {"iss": "https://vneid.example", "sub": "s-1", "acr": "LoA2"}


def test_portal_style_claims_map_by_default() -> None:
    identity = map_identity(
        BASE
        | {
            "SoDinhDanh": "001085012345",
            "HoVaTen": " Nguyễn Văn An ",
            "NgayThangNamSinh": "19850312",
        },
        Settings(),
    )
    assert (identity.citizen_id, identity.full_name, identity.birth_date) == (
        "001085012345",
        "Nguyễn Văn An",
        date(1985, 3, 12),
    )


def test_other_claim_names_are_a_matter_of_settings() -> None:
    settings = Settings(
        vneid_citizen_id_claim="citizenPid",
        vneid_name_claim="fullName",
        vneid_birthdate_claim="birthDate",
        vneid_birthdate_format="%d/%m/%Y",
    )
    identity = map_identity(
        BASE
        | {"citizenPid": "079190123456", "fullName": "Trần Thị Bình", "birthDate": "25/07/1990"},
        settings,
    )
    assert identity.birth_date == date(1990, 7, 25)


@pytest.mark.parametrize(
    "claims",
    [
        {"SoDinhDanh": "12345", "HoVaTen": "A", "NgayThangNamSinh": "19850312"},
        {"SoDinhDanh": "001085012345", "NgayThangNamSinh": "19850312"},
        {"SoDinhDanh": "001085012345", "HoVaTen": "A", "NgayThangNamSinh": "1985-03-12"},
    ],
    ids=["short-citizen-id", "no-name", "wrong-date-format"],
)
def test_incomplete_claims_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(ClaimsIncomplete):
        map_identity(BASE | claims, Settings())


def test_masking_keeps_province_and_last_three() -> None:
    assert mask_citizen_id("001085012345") == "001******345"
