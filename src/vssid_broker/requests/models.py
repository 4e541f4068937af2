"""Tables of the requests domain: a request, its history, and its one-time phone code."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.db import Base, BigId, UTCDateTime


class RequestKind(StrEnum):
    HEALTH_CARD_REISSUE = "health_card_reissue"
    PRIMARY_CARE_CHANGE = "primary_care_change"
    PHONE_CHANGE = "phone_change"


class RequestStatus(StrEnum):
    AWAITING_CODE = "awaiting_code"
    """A new phone number not yet confirmed by its one-time code: staff do not see it."""
    SUBMITTED = "submitted"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    REFUSED = "refused"
    CANCELLED = "cancelled"


OPEN_STATUSES = (RequestStatus.AWAITING_CODE, RequestStatus.SUBMITTED, RequestStatus.IN_PROGRESS)
_OPEN_SQL = "status IN ('awaiting_code', 'submitted', 'in_progress')"


class AgencyRequest(Base):
    """One request of a person to the agency. One open request per kind and person, enforced by
    a partial unique index (two submissions racing cannot both land); `version` makes every
    staff step an optimistic compare-and-set, as on review cases."""

    __tablename__ = "agency_requests"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('health_card_reissue', 'primary_care_change', 'phone_change')",
            name="kind_known",
        ),
        CheckConstraint(
            "status IN ('awaiting_code', 'submitted', 'in_progress', 'done', 'refused',"
            " 'cancelled')",
            name="status_known",
        ),
        Index(
            "uq_agency_requests_open_kind",
            "account_id",
            "kind",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index("ix_agency_requests_status_submitted", "status", "submitted_at"),
        Index("ix_agency_requests_account", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    """What the person and staff call the request by (e.g. `YC-2026-7K3M9QXA`)."""
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(15))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What the person asked for (reason, address, facility, new phone number)."""
    refusal_reason: Mapped[str | None] = mapped_column(String(500))
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    """The staff username who claimed the request: only they decide it."""
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it reached the agency's queue (a phone change: when its code was confirmed)."""
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Done, refused or cancelled: retention counts from here."""


class AgencyRequestEvent(Base):
    """One step of a request's history, as the person reads it."""

    __tablename__ = "agency_request_events"
    __table_args__ = (Index("ix_agency_request_events_request", "request_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("agency_requests.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(15))
    actor: Mapped[str] = mapped_column(String(100))
    """`person`, or `staff:<username>`."""
    note: Mapped[str | None] = mapped_column(String(500))


class PhoneCode(Base):
    """The one-time code sent to a new phone number, kept only as a keyed hash."""

    __tablename__ = "agency_request_phone_codes"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("agency_requests.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(default=0)


class RequestDraft(Base):
    """A browser form kept while the person signs in again at VNeID (step-up): the typed
    fields live here, not in a URL; the browser holds only a random key to it (a cookie), and
    only the same account reads it back, once."""

    __tablename__ = "agency_request_drafts"
    __table_args__ = (Index("ix_agency_request_drafts_expires_at", "expires_at"),)

    draft_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
