"""In-memory state of one simulator process: logins in progress, codes, tokens, keys, faults.

A simulator runs as a single process, so plain dicts are enough; nothing here is shared.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx

from .citizens import Citizen, check_unique, generate_citizens, load_citizens
from .config import ClientRegistration, SimSettings
from .faults import FaultQueue
from .keys import KeyRing, load_rsa_key, new_rsa_key

LoginStep = Literal["login", "otp", "consent", "locked", "finished"]


def new_handle(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request (from the query string or from PAR)."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    acr_values: tuple[str, ...] = ()
    essential_acr: tuple[str, ...] = ()
    """`acr` values asked as an essential claim (OIDC Core §5.5.1.1): met, or refused."""
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None


@dataclass
class LoginTransaction:
    """A person going through the login pages for one authorization request."""

    login_id: str
    request: AuthorizationRequest
    expires_at: float
    step: LoginStep = "login"
    citizen_id: str | None = None
    auth_time: int | None = None
    amr: tuple[str, ...] = ()
    failed_otp_attempts: int = 0
    sid: str | None = None
    """The sign-in session this login reuses (single sign-on), if any."""
    # Why going back to the client means access_denied, when it is not a plain cancel.
    cancel_description: str | None = None
    # A message for the next showing of the step's page (a wrong passcode or OTP), shown once.
    notice: str | None = None


@dataclass
class PushedRequest:
    request: AuthorizationRequest
    expires_at: float


@dataclass
class AuthorizationCode:
    request: AuthorizationRequest
    citizen_id: str
    auth_time: int
    amr: tuple[str, ...]
    expires_at: float
    sid: str = ""
    """The VNeID session the sign-in opened (the ID token's `sid`)."""
    used: bool = False
    # Access tokens issued from this code, revoked if the code is presented again.
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class VneidSession:
    """One sign-in at VNeID, remembered in the browser by a cookie (`SIGN_IN_COOKIE`): a later
    authorization request from that browser skips the passcode and OTP (single sign-on) unless
    it asks otherwise (`max_age` exceeded, `prompt=login`). And the clients that received tokens
    from it: whom to tell when it ends."""

    citizen_id: str
    expires_at: float
    client_ids: set[str] = field(default_factory=set)
    auth_time: int = 0
    """When the person typed their passcode (and OTP): kept across the single sign-ons."""
    amr: tuple[str, ...] = ()


@dataclass
class AccessToken:
    client_id: str
    citizen_id: str
    scope: str
    expires_at: float
    revoked: bool = False


class SimState:
    def __init__(
        self,
        settings: SimSettings,
        outbound_transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # Tests may replace `now` to move the simulator's clock.
        self.now = now
        self.outbound_transport = outbound_transport
        citizens = load_citizens(settings.citizens_file)
        # Only the file's citizens are listed on the login page; generated ones would swamp it.
        self.listed_citizen_ids = [c.citizen_id for c in citizens]
        if settings.generated_citizens:
            citizens += generate_citizens(settings.generated_citizens)
            check_unique(citizens)
        self.citizens: dict[str, Citizen] = {c.citizen_id: c for c in citizens}
        self.citizen_id_by_sub: dict[str, str] = {str(c.sub): c.citizen_id for c in citizens}
        self.clients: dict[str, ClientRegistration] = {c.client_id: c for c in settings.clients}
        first_key = (
            load_rsa_key(settings.signing_key_file) if settings.signing_key_file else new_rsa_key()
        )
        self.keys = KeyRing(first_key, settings.key_grace_seconds, now=lambda: self.now())
        self.faults = FaultQueue()
        self.logins: dict[str, LoginTransaction] = {}
        self.pushed_requests: dict[str, PushedRequest] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        # jti of accepted client assertions, with their expiry, to refuse replays.
        self.used_assertion_ids: dict[str, float] = {}
        # Which clients received tokens for a citizen (for back-channel logout).
        self.clients_by_citizen: dict[str, set[str]] = {}
        # VNeID sessions by `sid` (for front-channel and session-scoped logout).
        self.sessions: dict[str, VneidSession] = {}

    def endpoint(self, path: str) -> str:
        return self.settings.issuer.rstrip("/") + path

    def purge_expired(self) -> None:
        """Drop expired entries; called on each request so memory stays bounded."""
        now = self.now()
        stores = (self.logins, self.pushed_requests, self.codes, self.access_tokens, self.sessions)
        for store in stores:
            expired = [key for key, item in store.items() if item.expires_at < now - 60]
            for key in expired:
                del store[key]
        for jti, expires_at in list(self.used_assertion_ids.items()):
            if expires_at < now - 60:
                del self.used_assertion_ids[jti]

    def forget_sign_ins(self) -> None:
        """As if no one had signed in yet: logins, codes, tokens, sessions and who holds tokens
        for whom. Keys, citizens and registrations stay."""
        for store in (
            self.logins,
            self.pushed_requests,
            self.codes,
            self.access_tokens,
            self.used_assertion_ids,
            self.clients_by_citizen,
            self.sessions,
        ):
            store.clear()

    def revoke_tokens_for(self, citizen_id: str, client_id: str | None = None) -> int:
        count = 0
        for token in self.access_tokens.values():
            if token.citizen_id == citizen_id and client_id in (None, token.client_id):
                if not token.revoked:
                    count += 1
                token.revoked = True
        return count
