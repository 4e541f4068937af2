"""What the app sends and reads about requests, and what staff read and send."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from vssid_broker.requests.models import AgencyRequest, AgencyRequestEvent

ReissueReason = Literal["lost", "damaged", "details_wrong"]


class RequestIn(BaseModel):
    """One request. `kind` decides which other fields count:
    `health_card_reissue`: `reason`, optional `delivery_address` (default: the card's);
    `primary_care_change`: `facility_code`; `phone_change`: `new_phone`."""

    kind: str = Field(
        max_length=40, description="health_card_reissue | primary_care_change | phone_change"
    )
    reason: ReissueReason | None = None
    delivery_address: str | None = Field(default=None, min_length=5, max_length=300)
    facility_code: str | None = Field(default=None, max_length=12)
    new_phone: str | None = Field(default=None, max_length=15)


class PhoneCodeIn(BaseModel):
    code: str = Field(pattern=r"^[0-9]{6}$", description="the six digits sent to the new number")


class EventOut(BaseModel):
    at: datetime
    status: str
    by: str
    """`person` or `staff` (staff are named by role only: their names are their own data)."""
    note: str | None

    @classmethod
    def of(cls, event: AgencyRequestEvent) -> EventOut:
        by = "staff" if event.actor.startswith("staff:") else event.actor
        return cls(at=event.at, status=event.status, by=by, note=event.note)


class RequestOut(BaseModel):
    reference: str
    kind: str
    status: str
    details: dict[str, Any]
    refusal_reason: str | None
    created_at: datetime
    submitted_at: datetime | None
    closed_at: datetime | None
    history: list[EventOut] = []

    @classmethod
    def of(cls, row: AgencyRequest, events: list[AgencyRequestEvent] | None = None) -> RequestOut:
        return cls(
            reference=row.reference,
            kind=row.kind,
            status=row.status,
            details=dict(row.details),
            refusal_reason=row.refusal_reason,
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            closed_at=row.closed_at,
            history=[EventOut.of(event) for event in events or []],
        )


class FacilityOut(BaseModel):
    code: str
    name: str


class QueuedRequestOut(RequestOut):
    """What staff see: the request, whose it is (by social-insurance code), who works on it."""

    bhxh_code: str
    full_name: str
    assigned_to: str | None
    version: int

    @classmethod
    def queued(
        cls,
        row: AgencyRequest,
        bhxh_code: str,
        full_name: str,
        events: list[AgencyRequestEvent] | None = None,
    ) -> QueuedRequestOut:
        return cls(
            **RequestOut.of(row, events).model_dump(),
            bhxh_code=bhxh_code,
            full_name=full_name,
            assigned_to=row.assigned_to,
            version=row.version,
        )


class ClaimIn(BaseModel):
    version: int = Field(ge=1)


class DecisionIn(BaseModel):
    version: int = Field(ge=1)
    outcome: Literal["done", "refused"]
    reason: str | None = Field(default=None, max_length=500)
