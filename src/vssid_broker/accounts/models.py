"""Tables of the accounts domain."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from vssid_broker.db import Base, BigId, UTCDateTime, utcnow
from vssid_broker.identifiers import normalized_name


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
            "citizen_id IS NULL OR length(citizen_id) = 12", name="citizen_id_12_digits"
        ),
        CheckConstraint("gender IN ('male', 'female')", name="gender_known"),
        CheckConstraint("status IN ('active', 'locked', 'closed')", name="status_known"),
        # Linking rule 3 looks up records without a citizen ID by birth date and name.
        Index(
            "ix_accounts_unverified_birth_date_name",
            "birth_date",
            "name_key",
            sqlite_where=text("citizen_id IS NULL"),
            postgresql_where=text("citizen_id IS NULL"),
        ),
        # Staff search a person by name (`accounts.service.search`).
        Index("ix_accounts_name_key", "name_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bhxh_code: Mapped[str] = mapped_column(String(10), unique=True)
    # Unique when present: NULLs never collide in a unique index on either backend.
    citizen_id: Mapped[str | None] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str | None] = mapped_column(String(200))
    """`full_name` normalized for comparison (`identifiers.normalized_name`), kept in step by
    `_keep_name_key`; what linking rule 3 looks names up by."""
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

    @validates("full_name")
    def _keep_name_key(self, _key: str, full_name: str) -> str:
        self.name_key = normalized_name(full_name)
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

    account: Mapped[Account] = relationship(back_populates="health_card")


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
