"""Tables of the accounts domain."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from vssid_broker.db import Base, BigId, UTCDateTime, utcnow
from vssid_broker.identifiers import CITIZEN_ID, normalized_name, searchable_name
from vssid_broker.sealing import SealedCitizenId, SealedPlace

SearchKey = String(200).with_variant(postgresql.VARCHAR(200, collation="C"), "postgresql")
"""Compared in byte order on both databases (SQLite's default), so a prefix is a range the
index serves, whatever the database's own collation (PostgreSQL's may ignore spaces)."""


ACCOUNT_CITIZEN_ID = SealedPlace("accounts", "citizen_id_sealed", owner=("bhxh_code",))
"""An account's citizen ID is bound to its BHXH code: the person's lifelong social-insurance
number, which the agency's records (and the import, by which rows are matched) never change, and
which is known before the row has an id (an import seals the ID while staging its row)."""


def _twelve_digits(citizen_id: str) -> None:
    if not CITIZEN_ID.match(citizen_id):
        raise ValueError("a citizen ID has 12 digits")


class AccountStatus(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    CLOSED = "closed"


class InsuranceKind(StrEnum):
    BHXH = "BHXH"  # social insurance
    BHYT = "BHYT"  # health insurance
    BHTN = "BHTN"  # unemployment insurance


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("length(bhxh_code) = 10", name="bhxh_code_10_digits"),
        CheckConstraint(
            "(citizen_id_sealed IS NULL) = (citizen_id_index IS NULL)",
            name="citizen_id_sealed_with_index",
        ),
        CheckConstraint("gender IN ('male', 'female')", name="gender_known"),
        CheckConstraint("status IN ('active', 'locked', 'closed')", name="status_known"),
        # Linking rule 3 looks up records without a citizen ID by birth date and name.
        Index(
            "ix_accounts_unverified_birth_date_name",
            "birth_date",
            "name_key",
            sqlite_where=text("citizen_id_index IS NULL"),
            postgresql_where=text("citizen_id_index IS NULL"),
        ),
        # Staff search a person by name (`accounts.service.search`).
        Index("ix_accounts_name_key", "name_key"),
        # ... by a prefix of the name typed without diacritics (a byte-ordered range).
        Index("ix_accounts_search_key", "search_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bhxh_code: Mapped[str] = mapped_column(String(10), unique=True)
    citizen_id_sealed: Mapped[str | None] = mapped_column(String(80))
    """The citizen ID sealed at rest, bound to this row (`ACCOUNT_CITIZEN_ID`)."""
    citizen_id = SealedCitizenId[str | None](
        ACCOUNT_CITIZEN_ID, index="citizen_id_index", check=_twelve_digits
    )
    """The plain citizen ID (`vssid_broker.sealing`); found through `citizen_id_index`."""
    # Unique when present: NULLs never collide in a unique index on either backend.
    citizen_id_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    """The blind index of `citizen_id`, kept in step by writing `citizen_id`."""
    full_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str | None] = mapped_column(String(200))
    """`full_name` normalized for comparison (`identifiers.normalized_name`), kept in step by
    `_keep_name_key`; what linking rule 3 looks names up by."""
    search_key: Mapped[str | None] = mapped_column(SearchKey)
    """`full_name` as a clerk may type it (`identifiers.searchable_name`), kept in step by
    `_keep_name_key`; what the console's search by name reads, by prefix."""
    birth_date: Mapped[date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(6))
    phone: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(10), default=AccountStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    periods: Mapped[list[InsurancePeriod]] = relationship(
        back_populates="account", order_by="InsurancePeriod.start_month"
    )
    health_card: Mapped[HealthInsuranceCard | None] = relationship(back_populates="account")
    benefits: Mapped[list[InsuranceBenefit]] = relationship(
        back_populates="account", order_by="InsuranceBenefit.paid_on.desc()"
    )

    @validates("full_name")
    def _keep_name_key(self, _key: str, full_name: str) -> str:
        self.name_key = normalized_name(full_name)
        self.search_key = searchable_name(full_name)
        return full_name


class InsurancePeriod(Base):
    """One stretch of participation in one kind of insurance, month granularity."""

    __tablename__ = "insurance_periods"
    __table_args__ = (
        CheckConstraint("kind IN ('BHXH', 'BHYT', 'BHTN')", name="kind_known"),
        CheckConstraint("end_month IS NULL OR end_month >= start_month", name="ordered_months"),
        Index("ix_insurance_periods_account_kind", "account_id", "kind", "start_month"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(4))
    start_month: Mapped[date] = mapped_column(Date)
    end_month: Mapped[date | None] = mapped_column(Date)  # NULL: still participating
    employer: Mapped[str | None] = mapped_column(String(200))
    salary_basis_vnd: Mapped[int | None] = mapped_column(BigId)

    account: Mapped[Account] = relationship(back_populates="periods")


class HealthInsuranceCard(Base):
    """The BHYT card: since April 2021 only the 10-digit BHXH code is printed on it."""

    __tablename__ = "health_insurance_cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    card_code: Mapped[str] = mapped_column(String(15))
    benefit_level: Mapped[int] = mapped_column()
    primary_care_facility: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    # What the card's QR code carries besides the above (docs/health-card.md); NULL on cards
    # recorded before revision 0010, which the QR then leaves empty.
    facility_code: Mapped[str | None] = mapped_column(String(12))
    """Registered primary-care facility as province-facility code, e.g. `01-024`."""
    issued_on: Mapped[date | None] = mapped_column(Date)
    managing_office_code: Mapped[str | None] = mapped_column(String(10))
    five_years_from: Mapped[date | None] = mapped_column(Date)
    """From this date the holder has five continuous years of health insurance (a benefit
    without co-payment above a ceiling; printed on the card where it applies)."""
    living_area: Mapped[str | None] = mapped_column(String(2))
    """K1, K2 or K3: people living in remote areas; NULL for everyone else."""
    holder_address: Mapped[str | None] = mapped_column(String(300))

    account: Mapped[Account] = relationship(back_populates="health_card")


class BenefitKind(StrEnum):
    SICKNESS = "sickness"  # ốm đau
    MATERNITY = "maternity"  # thai sản
    HEALTH_RECOVERY = "health_recovery"  # dưỡng sức, phục hồi sức khoẻ
    OCCUPATIONAL = "occupational"  # tai nạn lao động, bệnh nghề nghiệp
    PENSION = "pension"  # lương hưu
    UNEMPLOYMENT = "unemployment"  # trợ cấp thất nghiệp
    MEDICAL = "medical"  # khám chữa bệnh BHYT


class InsuranceBenefit(Base):
    """One payment the person received ("thụ hưởng"): a sickness or maternity allowance, a
    month of pension, unemployment benefit, or the insurance's share of a treatment."""

    __tablename__ = "insurance_benefits"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('sickness', 'maternity', 'health_recovery', 'occupational', 'pension', "
            "'unemployment', 'medical')",
            name="benefit_kind_known",
        ),
        CheckConstraint("insurance IN ('BHXH', 'BHYT', 'BHTN')", name="benefit_insurance_known"),
        CheckConstraint("amount_vnd >= 0", name="benefit_amount_not_negative"),
        # The account page and the API read a person's benefits newest first, a page at a time.
        Index("ix_insurance_benefits_account_paid_on", "account_id", "paid_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    insurance: Mapped[str] = mapped_column(String(4))
    paid_on: Mapped[date] = mapped_column(Date)
    period_from: Mapped[date | None] = mapped_column(Date)
    period_to: Mapped[date | None] = mapped_column(Date)
    amount_vnd: Mapped[int] = mapped_column(BigId)
    description: Mapped[str] = mapped_column(String(200))

    account: Mapped[Account] = relationship(back_populates="benefits")


class AccountPassword(Base):
    """The password of a VssID account's electronic transaction login (argon2id hash only),
    with the failure counter behind the lockout. Absent: the account has no password."""

    __tablename__ = "account_passwords"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImportRunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    """Stopped on a file error: nothing of the file was merged."""
    INTERRUPTED = "interrupted"
    """Its process ended without finishing (killed): a later run found it so."""
    DRY_RUN = "dry_run"


class ImportRun(Base):
    """One `vssid-broker accounts import`: who ran it on which file, how far it got, and what it
    changed. The merge advances `merged_through_line` in the transaction of each batch it
    applies, so a run killed mid-way leaves a true record of what was applied."""

    __tablename__ = "import_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'completed', 'failed', 'interrupted', 'dry_run')",
            name="import_run_status_known",
        ),
        Index("ix_import_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(100))
    """Who ran it: `operator:<login name>` on the machine that ran the command."""
    file_name: Mapped[str] = mapped_column(String(300))
    file_digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the file's bytes as read (compressed, if it was): known once it was read."""
    status: Mapped[str] = mapped_column(String(12), default=ImportRunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows_read: Mapped[int] = mapped_column(default=0)
    merged_through_line: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    rejected_by_reason: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    sessions_ended: Mapped[int] = mapped_column(default=0)
    """Accounts locked or closed by the file whose sessions were ended."""
    reviews_opened: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    """The one-line file error a failed run stopped on."""


class StagedAccountRow(Base):
    """A valid row of an import's file, waiting for the merge (`accounts.import_merge`).

    The whole file is staged before anything is merged, so a file that turns out bad at its
    last line changes no account. Rows of a run are deleted when the run ends; an interrupted
    run's rows by the next run. On PostgreSQL the table is UNLOGGED (revision 0016): it is
    refilled from the file after a crash, so writing it to the WAL would only cost."""

    __tablename__ = "account_import_rows"
    # No secondary index: the merge reads a run's rows by line ranges (the primary key) and
    # finds repeats with one sort; an index on random keys would slow every COPY row.

    run_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    line: Mapped[int] = mapped_column(BigId, primary_key=True)
    bhxh_code: Mapped[str] = mapped_column(String(10))
    citizen_id_sealed: Mapped[str | None] = mapped_column(String(80))
    """Sealed by the reader (`sealing`), as `Account.citizen_id` stores it."""
    citizen_id_index: Mapped[str | None] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    search_key: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(6))
    phone: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(10))
    rejected: Mapped[str | None] = mapped_column(String(60))
    """Set by the merge: a reason only the whole file and the database can show (a BHXH code
    or citizen ID repeated in the file, a citizen ID another account holds)."""
