"""Every table, imported in one place so Alembic and the schema check see the whole metadata."""

from vssid_broker.accounts.models import (
    Account,
    AccountPassword,
    HealthInsuranceCard,
    InsuranceBenefit,
    InsurancePeriod,
)
from vssid_broker.admin.models import StaffConsoleSession, StaffRecoveryCode, StaffUser
from vssid_broker.audit.models import AuditCheckpoint, AuditEvent
from vssid_broker.db import Base
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.linking.models import FederatedLink, LinkConsent, ReviewCase
from vssid_broker.requests.models import (
    AgencyRequest,
    AgencyRequestEvent,
    PhoneCode,
    RequestDraft,
)
from vssid_broker.sessions.models import BrowserSession, RefreshToken, SigningKey, UsedJti

metadata = Base.metadata

__all__ = [
    "Account",
    "AccountPassword",
    "AgencyRequest",
    "AgencyRequestEvent",
    "AuditCheckpoint",
    "AuditEvent",
    "BrowserSession",
    "FederatedLink",
    "HealthInsuranceCard",
    "InsuranceBenefit",
    "InsurancePeriod",
    "LinkConsent",
    "LoginTransaction",
    "PhoneCode",
    "RefreshToken",
    "RequestDraft",
    "ReviewCase",
    "SigningKey",
    "StaffConsoleSession",
    "StaffRecoveryCode",
    "StaffUser",
    "UsedJti",
    "metadata",
]
