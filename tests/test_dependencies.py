"""What pyproject.toml declares is what the code imports, at versions the code works with."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _floor(name: str) -> tuple[int, ...]:
    for requirement in PROJECT["dependencies"]:
        if _name(requirement) == name:
            found = re.search(r">=\s*([0-9.]+)", requirement)
            assert found, requirement
            return tuple(int(part) for part in found.group(1).split("."))
    raise AssertionError(f"{name} is not a dependency")


def test_every_imported_package_is_declared() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    declared |= {_name(r) for extra in PROJECT["optional-dependencies"].values() for r in extra}
    imported: set[str] = set()
    for path in (ROOT / "autolabel_gui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    distributions = packages_distributions()
    missing = []
    for module in sorted(imported - set(sys.stdlib_module_names) - {"autolabel_gui"}):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} ({', '.join(sorted(names))})")
    assert missing == [], "imported but not declared in pyproject.toml"


def test_the_linters_are_a_dev_extra_not_a_test_one() -> None:
    extras = PROJECT["optional-dependencies"]
    assert {_name(r) for r in extras["dev"]} >= {"ruff", "mypy"}
    assert not {_name(r) for r in extras["test"]} & {"ruff", "mypy"}
    assert '".[test,dev,cluster]"' in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_installed_supervision_is_at_least_the_declared_floor() -> None:
    installed = tuple(int(p) for p in re.findall(r"\d+", version("supervision"))[:3])
    assert installed >= _floor("supervision")


def test_yolo_lines_from_a_height_width_shape() -> None:
    """The call ``formats.yolo.write_yolo`` makes: supervision up to 0.27 unpacked three values
    from ``image_shape`` and failed on this 2-tuple."""
    import supervision as sv
    from supervision.dataset.formats.yolo import detections_to_yolo_annotations

    detections = sv.Detections(xyxy=np.array([[20.0, 10.0, 60.0, 50.0]]), class_id=np.array([1]))
    lines = detections_to_yolo_annotations(detections, image_shape=(100, 200))
    assert len(lines) == 1
    fields = lines[0].split()
    assert fields[0] == "1"
    assert np.allclose([float(v) for v in fields[1:]], [40 / 200, 30 / 100, 40 / 200, 40 / 100], atol=1e-4)
