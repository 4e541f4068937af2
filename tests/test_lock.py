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


def test_the_image_and_dev_py_install_from_the_lock() -> None:
    assert "--constraint requirements.lock" in (ROOT / "Dockerfile").read_text()
    assert "--constraint" in (ROOT / "dev.py").read_text()
