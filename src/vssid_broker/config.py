"""Every setting of the broker, read from `VSSID_*` environment variables.

Each knob has a default that is safe for the embedded demo: SQLite in `./var`, the simulated
VNeID on loopback, and the demo client registration the simulator ships with.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from limits import RateLimitItem, parse_many
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

DEMO_CLIENT_SECRET = "vssid-broker-demo-secret"
DEMO_KEY_ENCRYPTION_KEY = "ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q"
"""The key-encryption key docker-compose.yml uses when none is given: published, so refused
on an https public URL."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def _list_from_text(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or values separated by commas."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError as error:
            raise ValueError(
                "expects a JSON list or comma-separated values; this JSON list does not parse"
            ) from error
    return [item.strip() for item in text.split(",") if item.strip()]


StrList = Annotated[list[str], NoDecode, BeforeValidator(_list_from_text)]
"""A list of strings: `["a","b"]` or `a,b` in the environment."""

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


@dataclass(frozen=True)
class VneidClient:
    """One client registration of the broker at VNeID (OIDC Dynamic Registration §2): the
    browser's is a web client, the app's a native one, each with its own redirect URIs."""

    client_id: str
    token_auth_method: TokenAuthMethod
    client_secret: SecretStr | None


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
    database_service_role: str | None = None
    """PostgreSQL: the role the serving broker connects as. `vssid-broker migrate` (run as the
    tables' owner) gives it its grants after migrating (`vssid-broker db grant`)."""
    public_base_url: str = "http://127.0.0.1:8000"
    database_pool_size: int = Field(default=32, ge=1)
    """Connections each process keeps open: as many as the requests it usually serves at once.
    Overflow connections are closed when returned, so a smaller pool reconnects on every burst,
    and a new connection costs as much CPU as dozens of requests (docs/performance.md)."""
    database_max_overflow: int = Field(default=8, ge=0)
    session_cache_size: int = Field(default=100_000, ge=0)
    """Live sessions each process remembers (least recently used go first), so an API call
    with an access token needs no database round trip; about 2 KB each. PostgreSQL only, and
    only while the process hears the database's invalidations (`sessions/live_cache.py`):
    a revocation still ends access at once on every process. 0 turns it off."""
    session_cache_max_age_seconds: int = Field(default=60, ge=1, le=3600)
    """A remembered live session is asked again after this long, whatever was heard."""
    session_cache_listen_url: str | None = None
    """The cache's listener connection, straight to the PostgreSQL primary, when
    `VSSID_DATABASE_URL` goes through a pooler in transaction mode (PgBouncer, CloudNativePG's
    Pooler), which LISTEN does not pass. Unset: `VSSID_DATABASE_URL`."""
    opentelemetry: bool = False
    """FastAPI's own OpenTelemetry spans, metrics and logs for every request, exported over
    OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (the standard `OTEL_*` variables); needs
    `pip install 'vssid-broker[otel]'`. Off: merely asking whether a provider is configured
    cost an eighth of the CPU of `/api/v1/me` (docs/performance.md)."""
    database_pre_ping: bool = False
    """Test each pooled connection with a round trip before use. Off: it cost a sixth of a
    refresh's CPU, and without it a database restart fails one request per process, after which
    SQLAlchemy replaces the whole pool."""
    key_encryption_key_file: Path = Path("./var/key-encryption.key")
    """File holding the 32-byte key that encrypts the broker's private signing keys at rest."""
    key_encryption_key: SecretStr | None = None
    """The same key given directly (base64url); wins over the file. Production: a secret store."""
    citizen_id_previous_keks: list[SecretStr] = Field(default_factory=list)
    """During a key-encryption-key rotation: the previous keys (base64url, JSON list), so every
    value sealed under them (citizen IDs, signing keys, second factors, ID tokens) still opens
    until `vssid-broker keys rotate-kek`/`keys reseal` has re-sealed every row under the current
    key. Empty otherwise."""
    blind_index_key_file: Path = Path("./var/blind-index.key")
    """File holding the 32-byte key of the citizen-ID blind index (HMAC-SHA256); created for
    the embedded demo. Kept apart from the key-encryption key: rotating one leaves the other."""
    blind_index_key: SecretStr | None = None
    """The same key given directly (base64url); wins over the file. Production: a secret store."""
    blind_index_previous_keys: list[SecretStr] = Field(default_factory=list)
    """During a blind-index key rotation: the previous keys (base64url, JSON list), so rows
    indexed under them are still found until `vssid-broker keys reindex-citizen-ids` has
    re-indexed every row under the current key. Empty otherwise."""
    open_unbound_sealed_values: bool = True
    """Open values sealed before revision 0021 bound every sealed value to its table, column and
    row (they carry a constant associated data, so one copied to another row would open there).
    On during the upgrade, counted in `vssid_sealed_values_unbound_opened`; once
    `vssid-broker keys reseal` has bound every one, set it false so an unbound value (copied back
    from an old backup, say) is refused. A new installation never writes one."""
    seal_bound_values: bool = True
    """Seal new values bound to their row. False only for the first rollout of the release that
    binds (docs/privacy.md): while pods of the previous release still run, they cannot open a
    bound value, so new pods write the old format until every pod reads both."""

    # --- VNeID, the OpenID provider ---------------------------------------------------------
    vneid_issuer: str = "http://127.0.0.1:9000"
    """Compared exactly as written (a trailing "/" included) with discovery and every token."""
    vneid_client_id: str = "vssid-broker"
    """The browser's registration at VNeID: a web client (redirect `…/auth/vneid/callback`)."""
    vneid_client_secret: SecretStr = SecretStr(DEMO_CLIENT_SECRET)
    vneid_token_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt"
    ] = "client_secret_basic"
    """`private_key_jwt` signs with the broker's keys; register its JWKS URL at VNeID."""
    vneid_app_client_id: str = "vssid-broker-app"
    """The app's own registration at VNeID: a native client whose redirect URIs are
    `VSSID_APP_REDIRECT_URIS` (a web client may not hold custom-scheme redirects). Set it to
    `VSSID_VNEID_CLIENT_ID` where VNeID gave one registration for both."""
    vneid_app_client_secret: SecretStr | None = None
    vneid_app_token_auth_method: TokenAuthMethod = "none"
    """`none`: a public native client (RFC 8252 §8.4), protected by the broker's own PKCE
    verifier, which never leaves the broker."""
    vneid_end_session_method: Literal["GET", "POST"] = "POST"
    """How the browser is sent to VNeID's `end_session_endpoint` (RP-Initiated Logout §2):
    an auto-submitted POST with the `id_token_hint` in its body, or, for a provider that
    serves only GET, a GET with `client_id` and no hint: the ID token (citizen ID, name,
    birth date) never goes in a URL."""
    vneid_request_essential_acr: bool = True
    """Ask for level 2 also as an essential `acr` claim (OIDC Core §5.5.1.1), so a provider
    that honours it refuses a level-1 person before any data is shared."""
    vneid_use_par: bool = False
    """Send the authorization request by PAR (RFC 9126); VNeID must publish the endpoint."""
    vneid_fetch_userinfo: bool = False
    """Also read claims from userinfo (its `sub` must equal the ID token's)."""
    vneid_max_age_seconds: int | None = None
    """If set, ask for a sign-in no older than this and check `auth_time`."""
    step_up_max_age_seconds: int = Field(default=300, ge=0, le=3600)
    """A request to the agency needs a level-2 VNeID sign-in at most this old (RFC 9470);
    older, the app gets `insufficient_user_authentication` and the browser is sent to VNeID."""
    vneid_scope: str = "openid profile citizen_id"
    vneid_signing_algs: StrList = Field(default_factory=lambda: ["RS256", "PS256", "ES256"])
    vneid_level2_acr_values: StrList = Field(default_factory=lambda: ["LoA2"])
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

    # --- VNeID's integration dialect (docs/provider-profiles.md) ------------------------------
    vneid_protocol: Literal["openid-connect", "vneid-encrypted"] = "openid-connect"
    """`openid-connect` (the default and the recommended profile): discovery, a signed ID token.
    `vneid-encrypted`: the dialect of VNeID's one public integration: endpoints configured one
    by one, answers perhaps encrypted, the identity from userinfo alone."""
    vneid_authorization_endpoint: str = ""
    vneid_token_endpoint: str = ""
    vneid_userinfo_endpoint: str = ""
    vneid_end_session_endpoint: str = ""
    """Dialect only (no discovery there): VNeID's URLs; the logout one may stay empty."""
    vneid_response_cipher: Literal["aes-ecb", "aes-cbc"] = "aes-ecb"
    """How `data` of an encrypted answer is enciphered: ECB (the integration's code) or CBC
    with the IV as its first 16 bytes (its design notes)."""
    vneid_decryption_key_files: StrList = Field(default_factory=list)
    """The relying party's RSA private keys (PEM, PKCS#1 or PKCS#8); the first is current,
    every one is tried (a rotation). Made by `vssid-broker keys rp-key`."""
    vneid_level_claim: str = "accountLevel"
    """Dialect: the userinfo claim carrying the VNeID account level."""
    vneid_level2_values: StrList = Field(default_factory=lambda: ["2"])
    """Dialect: values of `VSSID_VNEID_LEVEL_CLAIM` that mean level 2 (compared as text)."""
    vneid_max_answer_bytes: int = Field(default=65536, ge=1024)
    """The largest token or userinfo answer read (dialect): a bigger one is refused."""

    # --- the VssID mobile app, a public client of the broker ---------------------------------
    app_redirect_uris: StrList = Field(
        default_factory=lambda: [
            "vn.gov.baohiemxahoi.vssid:/oauth/vneid",
            "https://vssid.baohiemxahoi.gov.vn/app/oauth/vneid",
        ]
    )

    app_demo_redirect_uri: str = ""
    """The redirect of the app-flow demo page (`/demo/app`), which plays the VssID app in a
    browser: a loopback http redirect, as RFC 8252 §7.3 allows native apps. Empty: on a
    loopback public URL it is `<public URL>/demo/app/callback`, elsewhere the page is off.
    Register it at VNeID with the app's other redirect URIs."""

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
    staff_console_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    """Absolute lifetime of a staff console session (/admin): one working day."""
    staff_console_idle_seconds: int = Field(default=15 * 60, ge=60)
    """A staff console session unused this long ends (shorter than a person's: staff can
    change who is linked to whom)."""
    review_four_eyes: bool = True
    """A link made by review takes a reviewer's approval and a different approver's
    confirmation. Off, a reviewer's approval links at once."""
    review_target_hours: int = Field(default=48, ge=1)
    """How long a review case may wait: the queue marks older cases as overdue."""
    link_on_password_proof: bool = False
    """Linking rule 3: link at once when the person proves a candidate account by its
    password; off, the proof is filed on the review case for staff to confirm."""
    link_proof_ttl_seconds: int = 600
    primary_care_change_window_days: int = Field(default=15, ge=1, le=92)
    """The primary-care facility may be changed in the first this many days of each quarter
    (Health Insurance Law as amended, in force 1 July 2025; 10 under the earlier rule)."""
    phone_code_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    """How long the one-time code sent to a new phone number may be used."""
    phone_code_max_attempts: int = Field(default=5, ge=1, le=10)
    """Wrong codes before a phone change's code is spent (the request must be made again)."""
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

    # --- privacy: consent and retention (docs/privacy.md) ----------------------------------
    privacy_notice_version: str = "2026-12"
    """The version of the privacy notice (`/privacy`) a consent to link is recorded under. A
    person whose consent names another version is asked on their account page to agree to
    this one (or to unlink): raise it whenever the notice's text changes what it says."""
    retain_decided_review_cases_days: int = Field(default=365, ge=1)
    """Review cases are kept this long after staff decided them (evidence for complaints)."""
    retain_closed_requests_days: int = Field(default=5 * 365, ge=30)
    """A request to the agency is kept this long after it was done, refused or cancelled."""
    retain_audit_events_days: int = Field(default=5 * 365, ge=30)
    """Audit events are kept this long (breach records: at least five years)."""
    audit_anchor_key_file: Path | None = None
    """PEM file of the Ed25519 key that signs the audit chain's anchors (`audit anchor`) or,
    public only, checks them (`audit verify --anchors`). Only the anchoring job holds the
    private key: never the database, never the serving broker."""
    audit_anchor_pushgateway_url: str | None = None
    """A Prometheus Pushgateway (`http://pushgateway.monitoring:9091`) that `audit anchor` tells
    the time it wrote an anchor, for the `VssidAuditAnchorStale` alert; unset, it tells none."""
    retain_withdrawn_consents_days: int = Field(default=5 * 365, ge=30)
    """A consent is kept this long after the person withdrew it (unlinked): proof of what
    was agreed and when."""

    # --- abuse: rate limits, lockout, request sizes, password CPU ------------------------------
    rate_limit_storage: str = "memory://"
    """Where rate-limit counters live: `memory://` (one process, the embedded default) or a
    Redis URL (`redis://host:6379/0`) shared by every broker process."""
    rate_limit_key_prefix: str = Field(default="LIMITS", pattern=r"^[A-Za-z0-9_.:-]+$")
    """The start of every counter's key in Redis (`<prefix>:…`): deployments (or test runs)
    sharing one Redis database keep apart, and each can empty its own counts alone."""
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
    max_header_bytes: int = Field(default=16 * 1024, ge=4096)
    """Largest total size of a request's header fields (names and values, cookies included);
    larger ones are answered 431 before any route reads them."""
    max_json_depth: int = Field(default=8, ge=2, le=64)
    """Deepest nesting of JSON objects and arrays accepted in a request body."""
    password_hash_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1, le=64
    )
    """Threads that hash and verify passwords (argon2id, ~115 ms of CPU each): the most CPU
    password attempts can take from a process; more attempts queue for them."""
    password_hash_profile: Literal["recommended", "cheapest-for-tests"] = "recommended"
    """argon2id's parameters for new hashes: `recommended` is RFC 9106's low-memory choice
    (3 passes over 64 MiB, 4 lanes; argon2-cffi's default). `cheapest-for-tests` is the least
    argon2id accepts (1 pass, 8 KiB, 1 lane): it protects nothing, and exists so a test suite
    that signs in hundreds of times is not spent hashing; refused unless the public URL is on
    loopback."""

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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """In any case (`warning` is `WARNING`); another word is refused at start, in one line."""
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object a line (timestamp, level, logger, request_id, route, message and
    the event's fields such as outcome and duration_ms), for a log pipeline; `text` reads best
    in a terminal."""
    access_log: bool = False
    """One log line per request: method, route template, status, the refusal's error code,
    duration (never the query string, which carries codes and state on callbacks)."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics at `/metrics` on the main port. They carry counts, never an
    identifier; keep the path off the public ingress all the same (docs/deploy.md)."""

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

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("vneid_issuer")
    @classmethod
    def _issuer_is_a_url(cls, value: str) -> str:
        # OIDC Core §2: an https URL with no query or fragment; kept exactly as written.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("expects the issuer URL exactly as VNeID publishes it")
        if parts.fragment or "#" in value:
            raise ValueError("expects the issuer URL exactly as VNeID publishes it")
        return value

    @field_validator("vneid_end_session_method", "log_level", mode="before")
    @classmethod
    def _method_in_capitals(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _dialect_claim_names(self) -> Settings:
        # The dialect's own claim names, unless the operator named others.
        if self.vneid_protocol == "vneid-encrypted":
            for name, value in DIALECT_CLAIM_DEFAULTS.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

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
        if self.password_hash_profile == "cheapest-for-tests" and not is_loopback_url(
            self.public_base_url
        ):
            raise ValueError(
                "VSSID_PASSWORD_HASH_PROFILE=cheapest-for-tests protects no password; "
                "it is for test suites on loopback only"
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
        if self.vneid_protocol == "vneid-encrypted":
            self._check_dialect()
        if (
            self.vneid_app_token_auth_method in ("client_secret_basic", "client_secret_post")
            and self.vneid_app_client_secret is None
            and self.vneid_app_client_id != self.vneid_client_id
        ):
            raise ValueError(
                "VSSID_VNEID_APP_CLIENT_SECRET is needed for VSSID_VNEID_APP_TOKEN_AUTH_METHOD="
                f"{self.vneid_app_token_auth_method}"
            )
        return self

    def _check_dialect(self) -> None:
        """The dialect has no discovery: every endpoint it uses must be configured, over TLS
        outside loopback, and the relying party's keys must load now, not at the first login."""
        for name in ("authorization", "token", "userinfo", "end_session"):
            url = getattr(self, f"vneid_{name}_endpoint")
            setting = f"VSSID_VNEID_{name.upper()}_ENDPOINT"
            if not url:
                if name == "end_session":
                    continue
                raise ValueError(f"{setting} is required with VSSID_VNEID_PROTOCOL=vneid-encrypted")
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise ValueError(f"{setting} is not a URL: {url}")
            if urlsplit(url).scheme != "https" and not is_loopback_url(url):
                raise ValueError(f"{setting} must use https outside loopback: {url}")
        if self.vneid_use_par:
            raise ValueError(
                "VSSID_VNEID_USE_PAR does not apply to VSSID_VNEID_PROTOCOL=vneid-encrypted"
            )
        if not self.vneid_decryption_key_files:
            raise ValueError(
                "VSSID_VNEID_DECRYPTION_KEY_FILES is required with "
                "VSSID_VNEID_PROTOCOL=vneid-encrypted"
            )
        if not self.vneid_level_claim.strip() or not self.vneid_level2_values:
            raise ValueError("VSSID_VNEID_LEVEL_CLAIM and VSSID_VNEID_LEVEL2_VALUES must be set")
        for file_name in self.vneid_decryption_key_files:
            load_rp_private_key(Path(file_name))

    @property
    def vneid_dialect_subject_claim(self) -> str:
        """The dialect's subject: the citizen-ID claim, unless another one is configured."""
        if "vneid_subject_claim" in self.model_fields_set:
            return self.vneid_subject_claim
        return self.vneid_citizen_id_claim

    @property
    def vneid_web_client(self) -> VneidClient:
        return VneidClient(
            self.vneid_client_id, self.vneid_token_auth_method, self.vneid_client_secret
        )

    @property
    def vneid_app_client(self) -> VneidClient:
        # One registration for both: the app flow then uses the browser's credentials too.
        secret = self.vneid_app_client_secret
        if secret is None and self.vneid_app_client_id == self.vneid_client_id:
            secret = self.vneid_client_secret
        return VneidClient(self.vneid_app_client_id, self.vneid_app_token_auth_method, secret)

    def vneid_client_for(self, channel: str) -> VneidClient:
        return self.vneid_app_client if channel == "app" else self.vneid_web_client

    @property
    def vneid_client_ids(self) -> tuple[str, ...]:
        """Every audience VNeID may address tokens to (logout tokens name either client)."""
        return tuple(dict.fromkeys((self.vneid_client_id, self.vneid_app_client_id)))

    @cached_property
    def vneid_redirect_uri(self) -> str:
        return f"{self.public_base_url}/auth/vneid/callback"

    @cached_property
    def demo_app_redirect_uri(self) -> str | None:
        """`app_demo_redirect_uri` as in force; None when the demo page is off."""
        if self.app_demo_redirect_uri:
            return self.app_demo_redirect_uri
        if is_loopback_url(self.public_base_url):
            return f"{self.public_base_url}/demo/app/callback"
        return None

    def is_app_redirect_uri(self, uri: str) -> bool:
        """RFC 9700 §2.1: exact string comparison against the registered list, no patterns."""
        return uri in self.app_redirect_uris or uri == self.demo_app_redirect_uri

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where VNeID sends the browser after RP-initiated logout (register it at VNeID): the
        broker's "you have signed out" page."""
        return f"{self.public_base_url}/signed-out"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_base_url).scheme == "https"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


DIALECT_CLAIM_DEFAULTS = {
    "vneid_citizen_id_claim": "citizenPid",
    "vneid_name_claim": "fullName",
    "vneid_birthdate_claim": "birthDate",
    "vneid_birthdate_format": "%d/%m/%Y",
}
"""The userinfo claims of VNeID's integration dialect (the birth date's format is a guess the
sources leave open: set `VSSID_VNEID_BIRTHDATE_FORMAT` to what VNeID sends)."""


def load_rp_private_key(path: Path) -> RSAPrivateKey:
    """One relying-party RSA private key from PEM (PKCS#1 or PKCS#8, unencrypted); ValueError
    with a one-line reason otherwise."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read RSA key file {path}: {error.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < 2048:
        raise ValueError(f"{path} is not an RSA private key of at least 2048 bits")
    return key


class SettingsInvalid(Exception):
    """Start-up refused: one line per invalid setting, naming it and what it expects."""


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_class: type[SettingsT], **overrides: Any) -> SettingsT:
    """The settings from the environment (and `overrides`), or `SettingsInvalid` with one line
    per invalid setting: no traceback for an operator to read through."""
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        raise SettingsInvalid("\n".join(setting_error_lines(error, prefix))) from None
    except SettingsError as error:
        # pydantic-settings could not decode a JSON value before validation.
        found = re.search(r'field "([^"]+)"', str(error))
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        name = (prefix + (found.group(1) if found else "")).upper()
        raise SettingsInvalid(f"{name}: expects valid JSON") from None


def setting_error_lines(error: ValidationError, prefix: str) -> list[str]:
    """`VSSID_NAME: what it expects` per error; never the value given (it may be a secret)."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        message = message.replace("Input should be", "expects")
        location = [str(part) for part in item["loc"]]
        if not location:  # a rule across settings: its message names them already
            lines.append(message)
            continue
        name = (prefix + location[0]).upper()
        rest = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in location[1:])
        lines.append(f"{name}{rest}: {message}")
    return lines
