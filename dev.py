#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+.

    python3 dev.py demo     set up .venv, then run the demo (SQLite, simulated VNeID, demo data)
    python3 dev.py test     set up .venv, then run the whole test suite
    python3 dev.py check    set up .venv, then ruff (lint + format), mypy and the import contracts

Extra arguments after `test` go to pytest, e.g. `python3 dev.py test -k refresh -x`; the tests
run in one worker process per CPU (pytest-xdist; `-n 0` or VSSID_TEST_WORKERS=0 for one process).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
LOCK = ROOT / "requirements.lock"
"""Exact versions of everything installed (made by `uv pip compile`, see the README)."""


def run(*command: str | Path, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(part) for part in command], cwd=ROOT, env=env)  # noqa: S603
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def pip(*args: str | Path) -> None:
    """pip, its output kept in .venv/pip.log instead of on the screen: on success it is no news
    (and a machine's pip configuration may add a warning per package, an index location it
    ignores, say); on failure its last lines, the error among them, are shown."""
    log = VENV / "pip.log"
    with log.open("w") as out:
        command = [str(BIN / "python"), "-m", "pip", *map(str, args)]
        failed = subprocess.run(command, cwd=ROOT, stdout=out, stderr=out).returncode  # noqa: S603
    if failed:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print(f"\npip failed; the end of its output ({log}):", *tail, sep="\n", file=sys.stderr)
        sys.exit(failed)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project at the locked versions; reinstall only when
    pyproject.toml, setup.py or the lock changed."""
    inputs = b"".join((ROOT / name).read_bytes() for name in ("pyproject.toml", "setup.py"))
    inputs += LOCK.read_bytes() + extras.encode()
    wanted = hashlib.sha256(inputs).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    first_run = not (BIN / "python").exists()
    print(
        f"{'Creating' if first_run else 'Updating'} {VENV.name}/: installing vssid-broker{extras} "
        f"and its dependencies at the versions in {LOCK.name} with pip"
        f"{' (first run: about a minute)' if first_run else ''}...",
        flush=True,
    )
    if first_run:
        venv.create(VENV, with_pip=True)
    pip("install", "--upgrade", "pip")
    # Every package at its locked version and checked against the lock's hashes (the lock is
    # for every extra, which the suite's `[test]` needs anyway); then the project itself, which
    # has no hash to check, without letting it pull anything in.
    pip("install", "--require-hashes", "--requirement", LOCK)
    pip("install", "--no-deps", "--editable", f".{extras}")
    STAMP.write_text(wanted)
    print("Set up done.", flush=True)


# What the suite needs beyond Python packages: the browser tests drive the system's Chromium,
# the benchmark harness's smoke test drives single endpoints with wrk and runs its peer
# (panva's oidc-provider) with Node.js, installed by npm, the deployment tests
# render deploy/kubernetes with kubectl, the shared rate-limit counters' tests start a Redis
# server of their own. Tool: (overriding variable, Debian package).
SYSTEM_TOOLS = {
    "chromium": ("VSSID_TEST_CHROMIUM", "chromium"),
    "wrk": (None, "wrk"),
    "kubectl": (None, "kubernetes-client"),
    "promtool": (None, "prometheus"),  # checks and unit-tests deploy/monitoring's alert rules
    "redis-server": ("VSSID_TEST_REDIS_URL", "redis-server"),
    "node": (None, "nodejs"),
    "npm": (None, "npm"),
}


def ensure_system_tools() -> None:
    """Install what the suite needs on Debian/Ubuntu when we can (as root), else say what."""
    missing = [
        package
        for tool, (override, package) in SYSTEM_TOOLS.items()
        if not shutil.which(tool) and not (override and os.environ.get(override))
    ]
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print(f"Installing what the tests need: {' '.join(missing)} (apt-get)...", flush=True)
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", *missing)
        return
    print(
        f"Not installed: {', '.join(missing)}; the tests that need them will fail. Install them "
        f"(Debian/Ubuntu: sudo apt-get install {' '.join(missing)}).",
        file=sys.stderr,
    )


def test_workers(args: list[str]) -> list[str]:
    """pytest-xdist options: one worker per CPU (at most four; `VSSID_TEST_WORKERS` to choose,
    0 for none), unless the arguments choose already. Each worker has its own servers, ports,
    database and Redis (tests/conftest.py), so they share nothing but the machine."""
    chosen = ("-n", "--numprocesses", "--dist", "--pdb", "--trace", "no:xdist", "-pno:xdist")
    if any(arg.startswith(chosen) for arg in args):
        return []
    workers = os.environ.get("VSSID_TEST_WORKERS") or str(min(os.cpu_count() or 1, 4))
    if int(workers) < 2:
        return []
    return ["--numprocesses", workers]


def test_environment() -> dict[str, str]:
    """The suite starts the broker's commands as processes of their own hundreds of times:
    their compiled bytecode is kept in one place for the next process and the next run, even
    where the environment says not to write any (PYTHONDONTWRITEBYTECODE, common in container
    images), which would have each process compile every module of the project again. Kept
    under .venv, not beside the sources."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(VENV / "pycache")
    return env


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file must run on any python3
        sys.exit("vssid-broker needs Python 3.11 or newer")
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "demo":
        ensure_venv("")
        run(BIN / "vssid-broker", "demo", *args)
    elif command == "test":
        ensure_venv("[test]")
        ensure_system_tools()
        run(BIN / "python", "-m", "pytest", *test_workers(args), *args, env=test_environment())
    elif command == "check":
        ensure_venv("[test]")
        paths = [
            p
            for p in ("src", "tests", "bench", "migrations", "dev.py", "setup.py")
            if (ROOT / p).exists()
        ]
        run(BIN / "ruff", "check", *paths)
        run(BIN / "ruff", "format", "--check", *paths)
        run(BIN / "mypy")
        run(BIN / "lint-imports")  # the architecture contracts in pyproject.toml
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
