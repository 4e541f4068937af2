"""What the project ships: every module, data file and migration of the tree inside the wheel,
and a `migrate` that works from the wheel alone (no checkout beside it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel a non-editable install gets, built from a copy of the tree as it is: a
    checkout's own build/ folder keeps modules deleted since, which would ship again."""
    out = tmp_path_factory.mktemp("wheel")
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    for name in ("src", "migrations"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(  # noqa: S603 - our own build
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("vssid_broker-*.whl")
    return path


def files_to_ship() -> set[str]:
    """Every file of src/ and migrations/, named as in the wheel: the modules, templates, static
    files, fonts (and their licence), JSON data, and the migrations with their script template."""
    files = {p.relative_to(ROOT / "src") for p in (ROOT / "src").rglob("*") if p.is_file()}
    files |= {
        Path("vssid_broker") / p.relative_to(ROOT)
        for p in (ROOT / "migrations").rglob("*")
        if p.is_file()
    }
    return {
        path.as_posix()
        for path in files
        if "__pycache__" not in path.parts and not path.parts[0].endswith(".egg-info")
    }


def test_the_wheel_holds_every_module_data_file_and_migration(wheel: Path) -> None:
    names = {name for name in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in name}
    expected = files_to_ship()
    for kind in (".html", ".css", ".js", ".ttf", ".json", ".mako"):
        assert any(name.endswith(kind) for name in expected), kind
    assert any(name.startswith("vssid_broker/migrations/versions/") for name in expected)
    assert expected - names == set(), "missing from the wheel"
    assert names - expected == set(), "in the wheel but not in the tree"


def test_migrate_runs_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
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


def test_the_image_copies_everything_the_package_is_built_from() -> None:
    """The Dockerfile builds the wheel from a copy of the tree: a folder it leaves out (the
    migrations, say) would ship an image that cannot migrate, and without setup.py the build
    would find no packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    copied = {
        part.rstrip("/")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    }
    assert set(config["package-dir"].values()) | {"pyproject.toml", "setup.py"} <= copied
