"""The import contracts hold the whole tree, not a list of today's modules.

pyproject.toml's import-linter contracts name no module that a newcomer could forget to add:
the layers contract is exhaustive over the children of `vssid_broker`, the simulator's contract
forbids `vssid_broker.*`, and the other two name only who may import the simulator or the web
framework. The first tests check what `lint-imports` cannot: each child has exactly one place,
and every directory of Python code is a package `lint-imports` sees. The others run the same
`lint-imports` that `python3 dev.py check` runs on a copy of the tree: as it is, it passes;
with a new module that breaks the layering, it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "vssid_broker"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
"""The one installed beside the interpreter running the tests, as `dev.py check` runs it."""


def layers_contract(pyproject: Path) -> dict[str, Any]:
    contracts = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [contract for contract in contracts if contract["type"] == "layers"]
    return dict(layers)


def places(contract: dict[str, Any]) -> Counter[str]:
    """How often the layers contract names each module: in a layer (`a | b` independent
    siblings, `a : b` siblings that may import each other, `(a)` optional) or as left out."""
    named: Counter[str] = Counter(contract.get("exhaustive_ignores", []))
    for layer in contract["layers"]:
        for part in layer.replace(":", "|").split("|"):
            named[part.strip().strip("()")] += 1
    return named


def package_children(package: Path) -> set[str]:
    """A package's children as Python imports them: its modules and its sub-packages."""
    modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    packages = {path.name for path in package.iterdir() if (path / "__init__.py").is_file()}
    return modules | packages


def misplaced(package: Path, pyproject: Path) -> dict[str, int]:
    """The children of the package that the layers contract does not name exactly once, each
    with the number of places it has."""
    named = places(layers_contract(pyproject))
    return {name: named[name] for name in package_children(package) if named[name] != 1}


def test_the_layers_contract_holds_every_child_of_the_package() -> None:
    contract = layers_contract(ROOT / "pyproject.toml")
    assert contract["containers"] == ["vssid_broker"]
    assert contract["exhaustive"] is True


def test_every_module_of_the_package_has_exactly_one_place() -> None:
    assert misplaced(PACKAGE, ROOT / "pyproject.toml") == {}


def test_every_directory_of_python_code_is_a_package() -> None:
    """A directory of modules without `__init__.py` is a namespace package, which the import
    graph skips: its imports would break no contract."""
    directories = {path.parent for path in PACKAGE.rglob("*.py")} - {
        path.parent for path in PACKAGE.rglob("__init__.py")
    }
    assert sorted(str(directory.relative_to(PACKAGE)) for directory in directories) == []


@dataclass(frozen=True)
class Change:
    """Modules written into the copy and lines added to its modules."""

    files: dict[str, str]
    appended: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Break:
    """A change, the contract it breaks and a line `lint-imports` then prints."""

    change: Change
    broken: str
    says: str


BREAKS = {
    "a new top-level module given no layer": Break(
        Change({"newthing.py": '"""Imports nothing, but has no place."""\n'}),
        broken="Layers point one way",
        says="- vssid_broker.newthing",
    ),
    "the simulator importing a new module of the broker": Break(
        Change(
            {"newthing.py": '"""Broker code, however little it imports."""\nimport hashlib\n'},
            appended={"vneid_sim/config.py": "import vssid_broker.newthing\n"},
        ),
        broken="The simulator imports nothing of the broker",
        says="vssid_broker.vneid_sim.config -> vssid_broker.newthing",
    ),
    "a kernel module importing the web": Break(
        Change({}, appended={"config.py": "import vssid_broker.web\n"}),
        broken="Layers point one way",
        says="- vssid_broker.config -> vssid_broker.web",
    ),
    "a new module of a domain importing the web": Break(
        Change({"admin/audited_reads.py": "import vssid_broker.web\n"}),
        broken="Layers point one way",
        says="- vssid_broker.admin.audited_reads -> vssid_broker.web",
    ),
    "a new sub-package of a domain importing FastAPI": Break(
        Change({"accounts/newthing/__init__.py": "import fastapi\n"}),
        broken="Only web and app",
        says="- vssid_broker.accounts.newthing -> fastapi",
    ),
    "a new module of a domain importing the simulator": Break(
        Change({"linking/newthing.py": "import vssid_broker.vneid_sim.citizens\n"}),
        broken="Only cli and seeding import the simulator",
        says="- vssid_broker.linking.newthing -> vssid_broker.vneid_sim.citizens",
    ),
}

# Sub-packages inside packages that already have a layer take that layer: a staff face under
# web/, a staff sign-in story under login/, audited reads under admin/ need no contract edit.
FITS = Change(
    {
        "web/staff/__init__.py": '"""The staff faces."""\n',
        "web/staff/cases.py": "import fastapi\n\nimport vssid_broker.login.staff\n",
        "login/staff.py": "import vssid_broker.admin.audited_reads\nimport vssid_broker.sessions\n",
        "admin/audited_reads.py": "import vssid_broker.accounts\nimport vssid_broker.audit\n",
    }
)


def copy_of_the_tree(destination: Path, change: Change = Change({})) -> Path:
    """src/ and pyproject.toml copied to `destination`, with the change made."""
    shutil.copytree(ROOT / "src", destination / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", destination / "pyproject.toml")
    package = destination / "src" / "vssid_broker"
    for name, text in change.files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    for name, line in change.appended.items():
        with (package / name).open("a") as module:
            module.write(line)
    return destination


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` as `python3 dev.py check` runs it, on the copy (first on the path, ahead
    of the editable install) and with no cache, so nothing is read from an earlier run."""
    return subprocess.run(  # noqa: S603 - the installed lint-imports, fixed arguments
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_copy_of_the_tree_as_it_is_passes_lint_imports(tmp_path: Path) -> None:
    checked = lint_imports(copy_of_the_tree(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"Contracts: [1-9][0-9]* kept, 0 broken\.", checked.stdout)


@pytest.mark.parametrize("case", BREAKS.values(), ids=BREAKS.keys())
def test_a_new_module_that_breaks_the_layering_fails_lint_imports(
    tmp_path: Path, case: Break
) -> None:
    checked = lint_imports(copy_of_the_tree(tmp_path, case.change))
    assert checked.returncode != 0, checked.stdout + checked.stderr
    broken = [line for line in checked.stdout.splitlines() if line.endswith(" BROKEN")]
    assert [line for line in broken if line.startswith(case.broken)], checked.stdout
    assert case.says in checked.stdout, checked.stdout


def test_a_new_top_level_module_given_no_layer_has_no_place(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path, BREAKS["a new top-level module given no layer"].change)
    assert misplaced(tree / "src" / "vssid_broker", tree / "pyproject.toml") == {"newthing": 0}


def test_new_sub_packages_inside_packages_with_a_layer_need_no_contract_edit(
    tmp_path: Path,
) -> None:
    tree = copy_of_the_tree(tmp_path, FITS)
    checked = lint_imports(tree)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"Contracts: [1-9][0-9]* kept, 0 broken\.", checked.stdout)
    assert misplaced(tree / "src" / "vssid_broker", tree / "pyproject.toml") == {}


ROUTE_DECORATOR = re.compile(r"^@\w+\.(get|post|put|patch|delete|api_route)\(", re.MULTILINE)


def test_every_module_that_declares_routes_is_in_the_no_sideways_imports_contract() -> None:
    """A new route module is held to "no route module imports another" the day it is added."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (independence,) = [c for c in contracts["contracts"] if c["type"] == "independence"]
    declaring_routes = {
        "vssid_broker." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for path in (PACKAGE / "web").rglob("*.py")
        if ROUTE_DECORATOR.search(path.read_text(encoding="utf-8"))
    }
    assert declaring_routes == set(independence["modules"])
