"""Tables of the linking domain."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from vssid_broker.db import Base, BigId, UTCDateTime, utcnow
from vssid_broker.identifiers import mask_identifiers_in
from vssid_broker.sealing import SealedCitizenId, SealedPlace

LINK_CITIZEN_ID = SealedPlace("federated_links", "citizen_id_sealed", owner=("account_id",))
"""A link's citizen ID is bound to the linked account: known when the link is made, unique per
link, and never changed (an unlink deletes the row, a new link is a new row)."""
CASE_CITIZEN_ID = SealedPlace("review_cases", "citizen_id_sealed", owner=("provider", "subject"))
"""A review case's citizen ID is bound to the VNeID identity the case is about: known before the
case has an id, and never changed. Between two cases of one identity it would open; both hold
that identity's own claim."""


class FederatedLink(Base):
    """A VNeID identity (issuer, subject) bound to one VssID account.

    The database enforces both directions: one link per (provider, subject) and one VNeID
    identity per account, so two simultaneous first logins cannot make two links.
    """

    __tablename__ = "federated_links"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_federated_links_identity"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    citizen_id_sealed: Mapped[str] = mapped_column(String(80))
    """The citizen ID sealed at rest, bound to this row (`LINK_CITIZEN_ID`)."""
    citizen_id = SealedCitizenId[str](LINK_CITIZEN_ID)
    """The plain citizen ID (`vssid_broker.sealing`); read only with the link's account."""
    method: Mapped[str] = mapped_column(String(40))
    """How the link came to be: `citizen_id_match` (automatic), `staff_review`, ..."""
    linked_by: Mapped[str] = mapped_column(String(100))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReviewStatus(StrEnum):
    PENDING = "pending"
    PROPOSED = "proposed"
    """Four eyes: a reviewer approved a candidate; an approver must confirm before the link."""
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"
    """Closed without a decision: a duplicate of another case, or superseded."""


OPEN_STATUSES = (ReviewStatus.PENDING, ReviewStatus.PROPOSED)
"""A case in these states still waits for staff; one such case per VNeID identity."""


class ReviewReason(StrEnum):
    """Why the linking rules would not decide alone (rules 3 and 4 of `linking.service`)."""

    NAME_BIRTHDATE_MATCH = "name_birthdate_match"
    """Rule 3: no account carries the citizen ID; records without one match name and birth date."""
    SEVERAL_ACCOUNTS = "several_accounts"
    """Rule 4: more than one account carries the citizen ID."""
    ACCOUNT_LINKED_ELSEWHERE = "account_linked_elsewhere"
    """Rule 4: the account with the citizen ID is linked to another VNeID subject."""
    SUBJECT_LINKED_ELSEWHERE = "subject_linked_elsewhere"
    """Rule 4: this VNeID subject is linked to an account of another citizen ID."""
    RECORD_MISMATCH = "record_mismatch"
    """Rule 4: the account's name or birth date disagree with VNeID's verified claims."""
    CITIZEN_ID_CHANGED = "citizen_id_changed"
    """The agency's records (an import) changed the citizen ID of a linked account: the link
    is suspended until staff say whose VNeID identity it is."""


class StaffFreeText(TypeDecorator[str]):
    """Text staff type (a decision's reason): citizen IDs, BHXH codes and phone numbers in it
    are masked on the way in, by every write (ORM or an UPDATE statement), so neither the
    database nor an API answer ever holds them in full. Staff compare records in the console,
    not in their notes."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else mask_identifiers_in(value)


PENDING_CASE_INDEX = "uq_review_cases_pending_identity"
"""At most one open case per VNeID identity: its violation alone means a concurrent login."""


class ReviewCase(Base):
    """A link the rules refused to make alone, waiting for a staff decision.

    Holds only the minimal claims snapshot staff need to compare (issuer, subject, citizen ID,
    name, birth date). At most one pending case per VNeID identity, enforced by a partial
    unique index; `version` makes a decision an optimistic compare-and-set.
    """

    __tablename__ = "review_cases"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'proposed', 'approved', 'rejected', 'closed')",
            name="status_known",
        ),
        Index(
            PENDING_CASE_INDEX,
            "provider",
            "subject",
            unique=True,
            sqlite_where=text("status IN ('pending', 'proposed')"),
            postgresql_where=text("status IN ('pending', 'proposed')"),
        ),
        Index("ix_review_cases_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    citizen_id_sealed: Mapped[str] = mapped_column(String(80))
    """The citizen ID sealed at rest, bound to this row (`CASE_CITIZEN_ID`)."""
    citizen_id = SealedCitizenId[str](CASE_CITIZEN_ID, index="citizen_id_index")
    """The plain citizen ID (`vssid_broker.sealing`); searched through `citizen_id_index`."""
    citizen_id_index: Mapped[str] = mapped_column(String(64), index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    candidate_account_ids: Mapped[list[int]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default=ReviewStatus.PENDING)
    decided_account_id: Mapped[int | None] = mapped_column(BigId)
    """The candidate approved (or proposed, under four eyes)."""
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(StaffFreeText(1000))
    """Staff's words, identifiers in them masked on the way in (`StaffFreeText`)."""
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    proof_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Rule 3: SHA-256 of the one-time ticket with which the person may prove, by the
    account's password, which candidate is theirs. Cleared when used."""
    proof_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proven_account_id: Mapped[int | None] = mapped_column(BigId)
    """The candidate whose password the person knew: evidence for staff."""
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    """The staff username working on the case (claimed or assigned): nobody else decides it."""
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(100))
    """Four eyes: the approver who confirmed the reviewer's approval (`decided_by`)."""
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkConsent(Base):
    """The person's consent to link their VNeID identity: what VNeID shared, for what, under
    which privacy notice, when; and when they withdrew it (by unlinking). Personal-data law
    wants consent explicit and reproducible, so it is a row, not a line in a log."""

    __tablename__ = "link_consents"
    __table_args__ = (Index("ix_link_consents_account", "account_id", "given_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(300))
    claims: Mapped[list[str]] = mapped_column(JSON)
    """Names of the claims VNeID shared (never their values)."""
    purpose: Mapped[str] = mapped_column(String(200))
    notice_version: Mapped[str] = mapped_column(String(40))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
