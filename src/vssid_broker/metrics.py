"""Every Prometheus metric the broker exports, defined once; code counts where the event happens.

`/metrics` (web/operations.py) renders them. Under `serve --workers N` each worker writes its
values to files in `PROMETHEUS_MULTIPROC_DIR` and a scrape adds them up (prometheus-client's
multiprocess mode); gauges say how. Labels take only bounded values: channels, error codes,
route templates, never an identifier.

Counters incremented inside a database transaction count the attempt: a transaction that then
rolls back (rare: a lost race, the database gone) was still counted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from time import perf_counter
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.metrics_core import Metric

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Logins take a VNeID round trip and a few statements: tens of milliseconds to seconds.
LOGIN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# --- logins -------------------------------------------------------------------------------------
LOGINS_STARTED = Counter(
    "vssid_logins_started", "Logins sent to VNeID, by channel (browser, app)", ["channel"]
)
LOGINS_FINISHED = Counter(
    "vssid_logins_finished",
    "Logins back from VNeID, by channel and outcome (succeeded, or the refusal code)",
    ["channel", "outcome"],
)
LOGIN_DURATION = Histogram(
    "vssid_login_duration_seconds",
    "Broker-side time of a login's finish (VNeID's token endpoint included), by channel",
    ["channel"],
    buckets=LOGIN_BUCKETS,
)

# --- VNeID --------------------------------------------------------------------------------------
VNEID_REQUEST_DURATION = Histogram(
    "vssid_vneid_request_duration_seconds",
    "Time VNeID took to answer, by endpoint (token, userinfo, par, discovery, jwks)",
    ["endpoint"],
    buckets=LOGIN_BUCKETS,
)
VNEID_FETCHES = Counter(
    "vssid_vneid_fetches",
    "Discovery and JWKS fetches from VNeID, by document and result (ok, failed)",
    ["document", "result"],
)

# --- app tokens ---------------------------------------------------------------------------------
REFRESH_ROTATIONS = Counter("vssid_refresh_rotations", "Refresh tokens spent for a new pair")
REFRESH_REUSE_DETECTIONS = Counter(
    "vssid_refresh_reuse_detections",
    "Rotated refresh tokens presented again (their family is revoked)",
)
REVOCATIONS = Counter(
    "vssid_revocations",
    "Token families and sessions ended before their time, by reason",
    ["reason"],
)
SESSION_CACHE_LOOKUPS = Counter(
    "vssid_session_cache_lookups",
    "Access-token session checks by how the live-session cache answered: hit, miss (the "
    "database was asked), bypass (its listener is down, the database was asked)",
    ["outcome"],
)
SESSION_CACHE_HITS = SESSION_CACHE_LOOKUPS.labels("hit")
SESSION_CACHE_MISSES = SESSION_CACHE_LOOKUPS.labels("miss")
SESSION_CACHE_BYPASSES = SESSION_CACHE_LOOKUPS.labels("bypass")
SESSION_CACHE_REVOCATION_WAITS_RUN_OUT = Counter(
    "vssid_session_cache_revocation_waits_run_out",
    "Revocations answered before this process's listener received their notification (the "
    "wait's bound ran out)",
)
DPOP_REFUSALS = Counter("vssid_dpop_refusals", "Requests refused for a missing or bad DPoP proof")
REFUSALS = Counter("vssid_refusals", "Every refusal answered to a caller, by error code", ["code"])
RATE_LIMIT_HITS = Counter(
    "vssid_rate_limit_hits", "Requests refused by a rate limit, by limit name", ["limit"]
)

# --- sealed values (docs/privacy.md) -------------------------------------------------------------
SEALED_VALUES_REFUSED = Counter(
    "vssid_sealed_values_refused",
    "Sealed values refused where they were read (copied from another row, column or table, or "
    "altered; or unbound once those are no longer opened), by table.column",
    ["place"],
)
SEALED_VALUES_UNBOUND_OPENED = Counter(
    "vssid_sealed_values_unbound_opened",
    "Values sealed before they were bound to their row, opened during the upgrade "
    "(`keys reseal` binds them), by table.column",
    ["place"],
)

# --- review cases -------------------------------------------------------------------------------
REVIEW_CASES_OPENED = Counter(
    "vssid_review_cases_opened", "Link review cases opened, by reason", ["reason"]
)
REVIEW_CASES_DECIDED = Counter(
    "vssid_review_cases_decided", "Link review cases decided, by decision", ["decision"]
)
# Set from the database when /metrics is scraped; "mostrecent": the scraping worker's reading.
REVIEW_QUEUE_PENDING = Gauge(
    "vssid_review_queue_pending", "Review cases waiting for staff", multiprocess_mode="mostrecent"
)
REVIEW_QUEUE_OLDEST_AGE = Gauge(
    "vssid_review_queue_oldest_age_seconds",
    "Age of the oldest review case waiting for staff (0 when none waits)",
    multiprocess_mode="mostrecent",
)

# --- HTTP and the database pool -----------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "vssid_http_requests",
    "HTTP requests answered, by route template, method and status class",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "vssid_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["route"],
    buckets=REQUEST_BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "vssid_db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "vssid_db_pool_capacity",
    "Connections the pool may open (pool size + overflow)",
    multiprocess_mode="livesum",
)
# --- shared dependencies ------------------------------------------------------------------------
# An outage of PostgreSQL or Redis is shared by every pod: it is reported here and in /readyz's
# body, never by making pods unready (people then get the broker's own 503 page).
DEPENDENCY_UP = Gauge(
    "vssid_dependency_up",
    "Whether the last check reached a shared dependency (1) or not (0), by dependency "
    "(database: at each /metrics scrape and /readyz; redis: at each rate-limit count)",
    ["dependency"],
    multiprocess_mode="mostrecent",
)
RATE_LIMITS_ENFORCED = Gauge(
    "vssid_rate_limits_enforced",
    "1 while rate limits are enforced; 0 while their storage (Redis) cannot be reached and "
    "requests pass unlimited",
    multiprocess_mode="mostrecent",
)
DB_POOL_EXHAUSTED = Counter(
    "vssid_db_pool_exhausted",
    "Checkouts that took the pool's last free connection: the next request waits for one",
)


@lru_cache(maxsize=4096)
def _http_children(route: str, method: str, status: str) -> tuple[Any, Any]:
    # `.labels()` looks the child up under a lock on every call; the routes are few.
    return HTTP_REQUESTS.labels(route, method, status), HTTP_REQUEST_DURATION.labels(route)


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request, by its route template (bounded: never the raw path)."""
    requests, duration = _http_children(route, method, str(status))
    requests.inc()
    duration.observe(seconds)


def refusal(code: str) -> None:
    REFUSALS.labels(code=code).inc()


def rate_limited(limit: str) -> None:
    """The one call a rate limiter makes when it refuses a request."""
    RATE_LIMIT_HITS.labels(limit=limit).inc()


def vneid_fetched(document: str, *, ok: bool) -> None:
    VNEID_FETCHES.labels(document=document, result="ok" if ok else "failed").inc()


def dependency_reached(dependency: str, *, up: bool) -> None:
    DEPENDENCY_UP.labels(dependency=dependency).set(1 if up else 0)


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    """Observe the time the block took, whether it returned or raised."""
    started = perf_counter()
    try:
        yield
    finally:
        histogram.observe(perf_counter() - started)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))


_WORKER_FILE = re.compile(r"_(\d+)\.db$")


class WorkerProcesses:
    """The `process_*` metrics (CPU seconds, resident memory, open files, start time) of every
    live worker, each with its `pid`: the multiprocess collector has none, and the worker that
    answers a scrape can read its siblings' from /proc. The workers are known by the files they
    write in the multiprocess directory; a file of a worker that has exited is skipped."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def _live_pids(self) -> list[int]:
        pids = {
            int(found.group(1))
            for name in os.listdir(self._directory)
            if (found := _WORKER_FILE.search(name))
        }
        return sorted(pid for pid in pids if os.path.exists(f"/proc/{pid}"))

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for pid in self._live_pids():
            reader = ProcessCollector(pid=lambda pid=pid: pid, registry=None)  # type: ignore[misc]
            for family in reader.collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return merged.values()


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's files when several."""
    if not multiprocess_mode():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(WorkerProcesses(os.environ[MULTIPROCESS_DIR_VARIABLE]))
    return generate_latest(registry)


def prepare_multiprocess_dir(path: str) -> None:
    """Before the workers start: an empty directory, so no dead worker's values linger."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ[MULTIPROCESS_DIR_VARIABLE] = path
