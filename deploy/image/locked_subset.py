"""Print the blocks of requirements.lock (pins with their hashes) that one install needs.

The lock covers every extra, so `pip install --require-hashes -r requirements.lock` would put
the test and benchmark tools into the image. pip resolves the wanted install against the lock's
pins (without hashes: a constraints file with hashes would demand one for the project itself),
and only the locked blocks of what it would install are printed, hashes and all, for
`pip install --require-hashes --no-deps -r`. Used by the Dockerfile:

    python locked_subset.py requirements.lock ".[postgresql]" > locked.txt
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def blocks(lock: str) -> dict[str, str]:
    """Each pin of the lock with its continuation lines (hashes, `# via` comments)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lock.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            current = found.setdefault(canonical(re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0]), [])
        elif not line.strip() or line.startswith("#"):
            current = None
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def wanted(lock: str, target: str) -> list[str]:
    """What pip would install for `target` with the lock's versions."""
    pins = re.sub(r"\s*\\\n\s*--hash=\S+", "", lock)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
        constraints.write(pins)
        constraints.flush()
        report = subprocess.run(  # noqa: S603 - this interpreter's pip
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--quiet", "--report", "-", "--constraint", constraints.name, target],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    installs = json.loads(report.stdout)["install"]
    return [canonical(item["metadata"]["name"]) for item in installs]


def main() -> None:
    lock_path, target = sys.argv[1:3]
    lock = Path(lock_path).read_text()
    locked = blocks(lock)
    names = [name for name in wanted(lock, target) if name != "vssid-broker"]
    missing = [name for name in names if name not in locked]
    if missing:
        sys.exit(f"not in {lock_path}: {', '.join(missing)} (regenerate the lock)")
    print("\n".join(locked[name] for name in sorted(names)))


if __name__ == "__main__":
    main()
