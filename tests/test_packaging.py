"""What the project ships: every package of the tree, the migrations inside the wheel, and a
`migrate` that works from the wheel alone (no checkout beside it)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_list_names_every_package_of_the_tree() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    in_tree = {
        ".".join(init.parent.relative_to(ROOT / "src").parts)
        for init in (ROOT / "src").rglob("__init__.py")
    }
    assert set(config["packages"]) == in_tree | {"vssid_broker.migrations"}
    assert config["package-dir"]["vssid_broker.migrations"] == "migrations"


def test_migrate_runs_from_the_wheel_alone(tmp_path: Path) -> None:
    built = subprocess.run(  # noqa: S603 - our own build
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("vssid_broker-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = {
        f"vssid_broker/migrations/versions/{p.name}" for p in ROOT.glob("migrations/versions/*.py")
    }
    assert versions and versions <= names
    assert "vssid_broker/migrations/env.py" in names

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    database = tmp_path / "from-wheel.sqlite3"
    script = (
        "import vssid_broker, sys; from vssid_broker import schema;"
        f"assert vssid_broker.__file__.startswith({str(unpacked)!r}), vssid_broker.__file__;"
        f"schema.upgrade('sqlite+aiosqlite:///{database}'); print(schema.head_revision())"
    )
    migrated = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
    )
    assert migrated.returncode == 0, migrated.stderr
    assert database.exists()


def test_the_image_copies_every_folder_the_package_is_built_from() -> None:
    """The Dockerfile builds the wheel from a copy of the tree: a folder it leaves out (the
    migrations, say) would ship an image that cannot migrate."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    copied = {
        line.split()[1].rstrip("/")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    }
    assert set(config["package-dir"].values()) <= copied
