"""requirements.lock, which dev.py, CI and the Dockerfile install from, pins every dependency
pyproject.toml declares at a version inside its declared bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if found:
            pins[canonicalize_name(found.group(1))] = found.group(2)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines if not line.startswith(project["name"])]


def test_every_declared_dependency_is_pinned_inside_its_bounds() -> None:
    pins = pinned()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{name} is not in requirements.lock: run uv pip compile (docs/operations.md)"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]} outside {requirement.specifier}"
        )


def test_every_pin_carries_its_hashes() -> None:
    # `--require-hashes` refuses the whole install when one pin has none.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text().strip())
    for block in blocks:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]


def test_the_image_and_dev_py_install_from_the_lock_checking_its_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "locked_subset.py requirements.lock" in dockerfile
    assert "--require-hashes --no-deps -r locked.txt" in dockerfile
    assert '"--require-hashes", "--requirement", LOCK' in (ROOT / "dev.py").read_text()


def test_the_image_takes_only_the_locked_blocks_its_extras_need() -> None:
    """deploy/image/locked_subset.py: a pin and its hashes, whole, per package needed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "locked_subset", ROOT / "deploy" / "image" / "locked_subset.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    locked = module.blocks((ROOT / "requirements.lock").read_text())
    assert set(locked) == set(pinned())
    assert locked["asyncpg"].startswith("asyncpg==")
    assert "--hash=sha256:" in locked["asyncpg"]
    assert "# via" not in locked["asyncpg"].splitlines()[0]
