"""The benchmark harness, smoke-sized: it still brings everything up, drives every scenario with
one broker process and the scale-out ones with two, and writes its results, table and charts;
the accounts import, which needs no server, in a test of its own (it runs beside the other).
Figures are not checked (no timing assertion belongs in the suite)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import empty_data_tables
from tests.support.redis_server import SuiteRedis
from vssid_broker.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "browser_login",
    "mobile_login",
    "dialect_login",
    "step_up_login",
    "refresh",
    "me",
    "healthz",
    "jwks_verify",
    "audit_append",
    "audit_append_concurrent",
    "peer_refresh",
    "peer_authcode",
}
SCALE_OUT = {"mobile_login", "refresh", "me"}
DURATION = "0.25"
"""Seconds per scenario: each driver's workers start an operation until then and finish it, so
every scenario still counts operations and CPU (wrk's scenarios run its least, one second)."""


@pytest.fixture
async def emptied(engine: AsyncEngine) -> AsyncIterator[None]:
    await empty_data_tables(engine)
    yield
    await empty_data_tables(engine)


def harness_env(broker_settings: Settings) -> dict[str, str]:
    kek, index_key = broker_settings.key_encryption_key, broker_settings.blind_index_key
    assert kek is not None and index_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSSID_", "VNEID_SIM_"))}
    # The database keeps the suite's signing key, encrypted with the suite's key; with both
    # keys given the harness keeps none of its own (var/bench-keys.json).
    env["VSSID_KEY_ENCRYPTION_KEY"] = kek.get_secret_value()
    env["VSSID_BLIND_INDEX_KEY"] = index_key.get_secret_value()
    return env


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("emptied")
def test_the_harness_runs_every_scenario_and_writes_json_and_markdown(
    database_url: str, broker_settings: Settings, tmp_path: Path, redis_for_tests: SuiteRedis
) -> None:
    results, markdown = tmp_path / "latest.json", tmp_path / "performance.md"
    env = harness_env(broker_settings)
    # Rate-limit counts shared by the broker's processes, under a prefix of this test's own:
    # the harness empties those keys at each broker start, and no other.
    prefix = redis_for_tests.prefix_for("bench")
    command = [
        sys.executable, "bench/run.py",
        "--duration", DURATION, "--concurrency", "2", "--scales", "150", "--citizens", "40",
        "--workers", "2,1",
        # Every scenario but the import, which has a test of its own.
        "--scenarios", ",".join(sorted(SCENARIOS - {"audit_append_concurrent"})),
        "--rate-limit-storage", redis_for_tests.url, "--rate-limit-key-prefix", prefix,
        "--keep-schema", "--database-url", database_url,
        "--results", str(results), "--markdown", str(markdown),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own harness
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    report = json.loads(results.read_text())
    scale = report["scales"]["150"]
    scenarios = scale["scenarios"]
    assert set(scenarios) == SCENARIOS
    assert set(scale["scale_out"]["2"]) == SCALE_OUT | {"peak_rss_mb"}
    for name, result in [*scenarios.items(), *((n, scale["scale_out"]["2"][n]) for n in SCALE_OUT)]:
        assert result["ops"] > 0, (name, result["first_error"])
        assert result["errors"] == 0, (name, result["first_error"])
        assert result["cpu_ms_per_op"] > 0, name
        # Each simulated phone has its own address, so the shipped per-address limits hold
        # (the audit appends run in a process of their own, past no limit).
        assert result.get("rate_limited", {}) == {}, name
    # The dialect's broker and simulator served its logins, the standard ones the others.
    assert scenarios["dialect_login"]["server_cpu_s"]["broker"] > 0
    assert {"dialect_broker", "dialect_sim"} <= set(scale["peak_rss_mb"])
    assert scenarios["audit_append_concurrent"]["writers"] == 2
    assert report["machine"]["cores"] == os.cpu_count()
    assert report["command"].startswith(f"python3 bench/run.py --duration {DURATION} ")
    limits = report["settings"]["rate_limits"]
    assert limits["as_shipped"] and limits["storage"] == redis_for_tests.url
    assert redis_for_tests.keys(prefix), "the broker's processes counted in Redis"
    # Server logs and token lists went beside the results, not into the repository.
    assert (tmp_path / "tmp" / "broker.log").exists()
    table = markdown.read_text()
    assert "| refresh-token rotation |" in table and "oidc-provider: refresh grant" in table
    assert report["command"] in table
    assert "Rate limits as shipped" in table and "Scale-out" in table
    assert "| VNeID dialect login / standard mobile login |" in table
    assert "keyed audit chain: one event appended (in-process, 2 writers)" in table
    for chart in ("login-cpu", "login-latency", "scale-out"):
        png = tmp_path / f"latest-{chart}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), chart
        assert f"]({png.name})" in table, chart


@pytest.mark.timeout(300)
def test_the_harness_runs_the_accounts_import_alone(
    database_url: str, broker_settings: Settings, tmp_path: Path
) -> None:
    """`--scenarios import` starts no server and seeds nothing: the import has a database of
    its own (a SQLite file, or one made and dropped on the suite's PostgreSQL server)."""
    results, markdown = tmp_path / "latest.json", tmp_path / "performance.md"
    command = [
        sys.executable, "bench/run.py", "--scenarios", "import", "--import-rows", "30",
        "--database-url", database_url, "--results", str(results), "--markdown", str(markdown),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own harness
        command, cwd=ROOT, env=harness_env(broker_settings), capture_output=True, text=True,
        timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    report = json.loads(results.read_text())
    assert report["scales"] == {}
    runs = {run["run"]: run for run in report["import"]["runs"]}
    assert set(runs) == {"fresh", "rerun", "changes"}
    assert runs["fresh"]["summary"][0].startswith("added 30,")
    assert "unchanged 30" in runs["rerun"]["summary"][0]
    assert all(run["rows"] == 30 and run["peak_rss_mib"] > 0 for run in runs.values())
    assert "### Accounts import" in markdown.read_text()
    assert not (tmp_path / "tmp").exists(), "no server was started"


def test_the_harness_empties_only_the_brokers_keys_in_redis(
    redis_for_tests: SuiteRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each broker start begins with no counts, yet a Redis database shared with others keeps
    every key that is not the broker's (no FLUSHDB)."""
    monkeypatch.syspath_prepend(ROOT / "bench")  # as `python3 bench/run.py` has it
    harness = importlib.import_module("run")
    brokers, neighbours = redis_for_tests.prefix_for("harness"), redis_for_tests.prefix_for("other")
    with redis.Redis.from_url(redis_for_tests.url) as client:
        client.set(f"{brokers}:LIMITER/a/1/1/60", 1)
        client.set(f"{neighbours}:keepme", 1)
        harness.empty_rate_limit_storage(
            argparse.Namespace(
                rate_limit_storage=redis_for_tests.url, rate_limit_key_prefix=brokers
            )
        )
        assert client.exists(f"{brokers}:LIMITER/a/1/1/60") == 0
        assert client.get(f"{neighbours}:keepme") == b"1"
