"""Path and query parameters checked at the edge, so a value the database cannot hold (an id
past 64 bits, a time without a zone, a span of hours past any date) is a 422, never a 500."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AwareDatetime, BeforeValidator

MAX_ROW_ID = 2**63 - 1
"""Row ids are 64-bit (`BigId`)."""
MAX_AGE_HOURS = 24 * 366 * 100
"""A century: any span of hours a review queue can ask about."""

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
CaseIdInAudit = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
"""The audit trail finds a case by the `case_id` in its JSON details, which the query reads as a
32-bit integer (SQLAlchemy's `as_integer()`); review cases stay far below that count."""
AgeHours = Annotated[int | None, Query(ge=0, le=MAX_AGE_HOURS)]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID)]
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_8601_only(value: Any) -> Any:
    """Pydantic would also read a number as seconds since 1970; the API promises ISO 8601."""
    if isinstance(value, str) and not ISO_8601.match(value):
        raise ValueError("an ISO 8601 date and time with a time zone")
    return value


Moment = Annotated[
    AwareDatetime | None,
    BeforeValidator(_iso_8601_only),
    Query(description="ISO 8601 with a time zone, e.g. 2026-07-01T00:00:00+07:00"),
]
