"""Every setting of the broker, read from `VSSID_*` environment variables.

Each knob has a default that is safe for the embedded demo: SQLite in `./var`, the simulated
VNeID on loopback, and the demo client registration the simulator ships with.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_CLIENT_SECRET = "vssid-broker-demo-secret"
DEMO_KEY_ENCRYPTION_KEY = "ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q"
"""The key-encryption key docker-compose.yml uses when none is given: published, so refused
on an https public URL."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def parse_rate_limit(value: str) -> list[RateLimitItem]:
    """A rate limit in the `limits` notation ("30/minute", "3 per 15 minutes", "10/s;100/h")."""
    try:
        return parse_many(value)
    except ValueError as error:
        raise ValueError(f"not a rate limit: {value!r} (e.g. 30/minute)") from error


class ServiceClient(BaseModel):
    """Another VssID service allowed to introspect tokens (RFC 7662 §2.1: callers authenticate)."""

    client_id: str = Field(min_length=1, max_length=100)
    client_secret: SecretStr

    @field_validator("client_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("a service client secret must be at least 32 characters")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VSSID_", env_file=None, extra="ignore")

    # --- where things are -------------------------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///./var/vssid-broker.sqlite3"
    public_base_url: str = "http://127.0.0.1:8000"
    database_pool_size: int = Field(default=32, ge=1)
    """Connections each process keeps open: as many as the requests it usually serves at once.
    Overflow connections are closed when returned, so a smaller pool reconnects on every burst,
    and a new connection costs as much CPU as dozens of requests (docs/performance.md)."""
    database_max_overflow: int = Field(default=8, ge=0)
    opentelemetry: bool = False
    """FastAPI's own OpenTelemetry spans, metrics and logs for every request, sent to the global
    providers (configured through the standard `OTEL_*` variables). Off: merely asking whether
    a provider is configured cost an eighth of the CPU of `/api/v1/me` (docs/performance.md)."""
    database_pre_ping: bool = False
    """Test each pooled connection with a round trip before use. Off: it cost a sixth of a
    refresh's CPU, and without it a database restart fails one request per process, after which
    SQLAlchemy replaces the whole pool."""
    key_encryption_key_file: Path = Path("./var/key-encryption.key")
    """File holding the 32-byte key that encrypts the broker's private signing keys at rest."""
    key_encryption_key: SecretStr | None = None
    """The same key given directly (base64url); wins over the file. Production: a secret store."""

    # --- VNeID, the OpenID provider ---------------------------------------------------------
    vneid_issuer: str = "http://127.0.0.1:9000"
    vneid_client_id: str = "vssid-broker"
    vneid_client_secret: SecretStr = SecretStr(DEMO_CLIENT_SECRET)
    vneid_token_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt"
    ] = "client_secret_basic"
    """`private_key_jwt` signs with the broker's keys; register its JWKS URL at VNeID."""
    vneid_use_par: bool = False
    """Send the authorization request by PAR (RFC 9126); VNeID must publish the endpoint."""
    vneid_fetch_userinfo: bool = False
    """Also read claims from userinfo (its `sub` must equal the ID token's)."""
    vneid_max_age_seconds: int | None = None
    """If set, ask for a sign-in no older than this and check `auth_time`."""
    vneid_scope: str = "openid profile"
    vneid_signing_algs: list[str] = Field(default_factory=lambda: ["RS256", "PS256", "ES256"])
    vneid_level2_acr_values: list[str] = Field(default_factory=lambda: ["LoA2"])
    """`acr` values that mean level 2. The real VNeID's names are not public, so configure them."""
    vneid_subject_claim: str = "sub"
    vneid_citizen_id_claim: str = "SoDinhDanh"
    vneid_name_claim: str = "HoVaTen"
    vneid_birthdate_claim: str = "NgayThangNamSinh"
    vneid_birthdate_format: str = "%Y%m%d"
    vneid_gender_claim: str = "gender"
    vneid_http_timeout_seconds: float = 5.0
    vneid_metadata_ttl_seconds: int = 3600
    vneid_jwks_min_refetch_seconds: int = 30
    """Floor between JWKS refetches on an unknown `kid`: bad tokens cannot make us hammer VNeID."""
    id_token_clock_skew_seconds: int = 60

    # --- the VssID mobile app, a public client of the broker ---------------------------------
    app_redirect_uris: list[str] = Field(
        default_factory=lambda: [
            "vn.gov.baohiemxahoi.vssid:/oauth/vneid",
            "https://vssid.baohiemxahoi.gov.vn/app/oauth/vneid",
        ]
    )

    # --- lifetimes ---------------------------------------------------------------------------
    login_transaction_ttl_seconds: int = 600
    access_token_ttl_seconds: int = 300
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    browser_session_ttl_seconds: int = 8 * 3600
    """Absolute lifetime of a browser session; activity never extends it."""
    browser_session_idle_seconds: int = 30 * 60
    """A browser session unused this long ends (OWASP session management: idle timeout)."""
    refresh_token_idle_seconds: int = 14 * 24 * 3600
    """A refresh-token family unused this long ends, even inside its absolute lifetime."""
    refresh_token_reuse_detection_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    """How long a rotated refresh token is kept (`vssid-broker purge` deletes it after): its
    return within this window revokes the family (reuse detection); after it, it is refused as
    unknown. A family keeps a row per rotation, so this bounds the table at scale."""
    refresh_families_per_account: int = Field(default=10, ge=1)
    """At most this many signed-in app installations per account; the oldest is ended."""
    access_token_audience: str = "vssid"
    staff_token_ttl_seconds: int = 900
    """Staff tokens (admin API) are short-lived: a lost one is useful for minutes, not days."""
    staff_token_audience: str = "vssid-admin"
    link_on_password_proof: bool = False
    """Linking rule 3: link at once when the person proves a candidate account by its
    password; off, the proof is filed on the review case for staff to confirm."""
    link_proof_ttl_seconds: int = 600
    password_max_failures: int = 5
    """Consecutive wrong passwords before an account's password sign-in locks."""
    password_lockout_seconds: int = 900
    signing_alg: Literal["ES256", "EdDSA"] = "ES256"

    # --- sender-constrained app tokens (DPoP, RFC 9449) ---------------------------------------
    bearer_tokens_allowed: bool = True
    """Let clients that cannot do DPoP use plain bearer tokens. An app that sends a DPoP proof
    always gets bound tokens; set false once every app version does DPoP."""
    dpop_proof_max_age_seconds: int = Field(default=60, ge=5, le=600)
    """How old a DPoP proof's `iat` may be; its `jti` is remembered for this long."""

    # --- other VssID services ---------------------------------------------------------------
    service_clients: list[ServiceClient] = Field(default_factory=list)
    """Services that may call token introspection, with their own secrets (JSON list)."""

    # --- abuse: rate limits, lockout, request sizes, password CPU ------------------------------
    rate_limit_storage: str = "memory://"
    """Where rate-limit counters live: `memory://` (one process, the embedded default) or a
    Redis URL (`redis://host:6379/0`) shared by every broker process."""
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    """Addresses (or networks) of the reverse proxies in front of the broker. Only a request
    whose peer is one of them has its client address read from `X-Forwarded-For`."""
    rate_limit_password_per_ip: str = "30/minute"
    """Password attempts (app sign-in, proof by password, staff sign-in) from one client."""
    rate_limit_password_per_identifier: str = "20/hour"
    """Password attempts at one BHXH code, citizen ID or staff username, from anywhere."""
    rate_limit_password_per_ip_and_identifier: str = "3/15minutes"
    """Attempts at one identifier from one client. Below `password_max_failures`, so one client
    is stopped before it can lock the person's sign-in."""
    rate_limit_login_start_per_ip: str = "60/minute"
    """Logins started (browser and app) from one client."""
    rate_limit_token_per_ip: str = "600/minute"
    """Token endpoints (refresh, revoke, introspect, the app's login completion) from one
    client; generous, because many phones share one carrier address."""
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    """Largest request body read (JSON and forms); larger ones are answered 413 unread."""
    max_json_depth: int = Field(default=8, ge=2, le=64)
    """Deepest nesting of JSON objects and arrays accepted in a request body."""
    password_hash_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1, le=64
    )
    """Threads that hash and verify passwords (argon2id, ~115 ms of CPU each): the most CPU
    password attempts can take from a process; more attempts queue for them."""

    # --- faults ------------------------------------------------------------------------------
    refresh_token_grace_seconds: int = Field(default=30, ge=0, le=300)
    """A refresh whose answer was lost (dropped connection, crash after the commit) may be
    retried with the same refresh token this long and gets the same new refresh token back,
    instead of ending the family as a reuse. 0 turns it off."""
    token_clock_leeway_seconds: int = Field(default=30, ge=0, le=300)
    """Tolerance on `iat` and `nbf` of the broker's own tokens (access, staff), for processes
    whose clocks differ a little. `exp` is kept exactly: a token lives no longer than said."""
    database_outage_retry_after_seconds: int = Field(default=5, ge=1, le=300)
    """`Retry-After` of the 503 answered while the database cannot be reached; an outage is
    logged at most once per this many seconds."""

    # --- operations --------------------------------------------------------------------------
    log_level: str = "INFO"

    @field_validator(
        "rate_limit_password_per_ip",
        "rate_limit_password_per_identifier",
        "rate_limit_password_per_ip_and_identifier",
        "rate_limit_login_start_per_ip",
        "rate_limit_token_per_ip",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        if value != "memory://" and urlsplit(value).scheme not in ("redis", "rediss"):
            raise ValueError("VSSID_RATE_LIMIT_STORAGE must be memory:// or a redis:// URL")
        return value

    @field_validator("public_base_url", "vneid_issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _https_outside_loopback(self) -> Settings:
        # RFC 9700 §2.1 / OIDC Core §3.1.2.1: talk to the provider over TLS unless on loopback.
        for name in ("public_base_url", "vneid_issuer"):
            url = getattr(self, name)
            if urlsplit(url).scheme != "https" and not is_loopback_url(url):
                raise ValueError(f"VSSID_{name.upper()} must use https outside loopback: {url}")
        if "none" in (alg.lower() for alg in self.vneid_signing_algs):
            raise ValueError("VSSID_VNEID_SIGNING_ALGS must not allow 'none'")
        if (
            self.vneid_token_auth_method != "private_key_jwt"
            and self.vneid_client_secret.get_secret_value() == DEMO_CLIENT_SECRET
            and not is_loopback_url(self.public_base_url)
        ):
            raise ValueError(
                "VSSID_VNEID_CLIENT_SECRET is the published demo secret; set a real one"
            )
        if (
            self.key_encryption_key is not None
            and self.key_encryption_key.get_secret_value().rstrip("=") == DEMO_KEY_ENCRYPTION_KEY
            and self.secure_cookies
        ):
            raise ValueError(
                "VSSID_KEY_ENCRYPTION_KEY is the published demo key; set one from a secret store"
            )
        # Claims mapping is checked now, not at the first login: a bad format fails start-up.
        sample = date(1990, 7, 25)
        try:
            parsed = datetime.strptime(
                sample.strftime(self.vneid_birthdate_format), self.vneid_birthdate_format
            ).date()
        except ValueError as error:
            raise ValueError("VSSID_VNEID_BIRTHDATE_FORMAT is not a usable date format") from error
        if parsed != sample:
            raise ValueError("VSSID_VNEID_BIRTHDATE_FORMAT must carry year, month and day")
        claim_names = (
            self.vneid_subject_claim,
            self.vneid_citizen_id_claim,
            self.vneid_name_claim,
            self.vneid_birthdate_claim,
        )
        if not all(name.strip() for name in claim_names):
            raise ValueError("VNeID claim names must not be empty")
        if not self.vneid_level2_acr_values:
            raise ValueError("VSSID_VNEID_LEVEL2_ACR_VALUES must name at least one acr value")
        return self

    @cached_property
    def vneid_redirect_uri(self) -> str:
        return f"{self.public_base_url}/auth/vneid/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where VNeID sends the browser after RP-initiated logout (register it at VNeID)."""
        return f"{self.public_base_url}/"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_base_url).scheme == "https"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
