"""The Redis the suite's rate-limit counters go to: a server of the suite's own, or the one
`VSSID_TEST_REDIS_URL` names, in which the suite touches only keys under its run's prefix.

By default each run (each xdist worker) starts `redis-server` on a free loopback port, without
persistence, in a temporary folder, and stops it at the end: nothing of the developer's Redis
is read or written. With `VSSID_TEST_REDIS_URL` (a Redis provided by CI, say) every key the
suite's brokers write begins with the run's prefix (`VSSID_RATE_LIMIT_KEY_PREFIX`), and at the
end the suite deletes those keys and no other: never FLUSHDB.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.live_server import free_port

EXPLICIT_URL = "VSSID_TEST_REDIS_URL"


@dataclass(frozen=True)
class SuiteRedis:
    """Where the suite's counters go, and the prefix every key of this run begins with."""

    url: str
    key_prefix: str
    own_server: bool

    def prefix_for(self, name: str) -> str:
        """A prefix of its own for one test (no counts from another test), inside the run's."""
        return f"{self.key_prefix}:{name}"

    def keys(self, prefix: str | None = None) -> list[bytes]:
        """The keys under `prefix` (default: every key of this run)."""
        with contextlib.closing(redis.Redis.from_url(self.url, socket_timeout=5)) as client:
            return sorted(client.scan_iter(match=f"{prefix or self.key_prefix}:*", count=1000))

    def delete_own_keys(self) -> int:
        """Delete this run's keys, found by their prefix, and nothing else."""
        deleted = 0
        with contextlib.closing(redis.Redis.from_url(self.url, socket_timeout=5)) as client:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
                batch.append(key)
                if len(batch) == 500:
                    deleted += int(client.unlink(*batch))
                    batch.clear()
            if batch:
                deleted += int(client.unlink(*batch))
        return deleted


def run_prefix() -> str:
    """`vssid-test-<pid>-<random>`: no two runs (or xdist workers) share one. Letters, digits
    and dashes only, so it is also a literal SCAN pattern."""
    return f"vssid-test-{os.getpid()}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def own_redis_server(folder: Path) -> Iterator[str]:
    """`redis-server` on a free loopback port, nothing saved to disk; its URL, stopped at exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: `python3 dev.py test` installs it (Debian/Ubuntu: "
            f"apt-get install redis-server), or set {EXPLICIT_URL} to a Redis the suite may "
            "write keys to (under a prefix of its own)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # the free port may be taken between the look and the start
        port = free_port()
        process = subprocess.Popen(  # noqa: S603 - the system's redis-server
            [
                binary,
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                *("--logfile", str(folder / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        url = f"redis://127.0.0.1:{port}/0"
        if _wait_ready(url, process):
            break
        process.kill()
        process.wait()
    else:
        log = (folder / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server did not start:\n{log}")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    with contextlib.closing(redis.Redis.from_url(url, socket_timeout=1)) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                pass
            time.sleep(0.02)
    return False


@contextlib.contextmanager
def suite_redis(folder: Path) -> Iterator[SuiteRedis]:
    """The suite's Redis for one run (see the module's docstring).

    A key of the run's own, set first and looked for last, catches a test that empties more
    than it wrote (a FLUSHDB, a pattern without the prefix): the run then ends in an error.
    """
    prefix = run_prefix()
    explicit = os.environ.get(EXPLICIT_URL)
    with contextlib.ExitStack() as stack:
        url = explicit or stack.enter_context(own_redis_server(folder))
        suite = SuiteRedis(url=url, key_prefix=prefix, own_server=not explicit)
        sentinel = f"{prefix}:sentinel"
        with contextlib.closing(redis.Redis.from_url(url, socket_timeout=5)) as client:
            client.set(sentinel, "the suite deletes only keys it wrote")
        try:
            yield suite
            with contextlib.closing(redis.Redis.from_url(url, socket_timeout=5)) as client:
                survived = bool(client.exists(sentinel))
            if not survived:
                raise AssertionError(
                    f"a test deleted Redis keys it had not written ({sentinel} is gone): "
                    "tests delete only keys under their own prefix, never FLUSHDB"
                )
        finally:
            suite.delete_own_keys()
