"""Shipped models and ROS parameter files are package data, found without the checkout.

The lookup (:mod:`vis_node.resources`) is checked in the install under test, and in a
wheel built from the project and unpacked alone (as ``pip install`` leaves it), where no
checkout surrounds the package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import vis_node
from vis_node.perception.checkpoint import available_models, models_dir, resolve_model
from vis_node.perception.nanodet import NANODET_WEIGHTS_PATH
from vis_node.resources import ros_config_dir, shipped_models_dir
from vis_node.ros.graph import NODE_KINDS, default_params_file

PACKAGE = Path(vis_node.__file__).resolve().parent
REPO = PACKAGE.parent
SHIPPED_MODELS = ("davis", "real", "synth")


def _package_data() -> list[str]:
    """Every shipped data file, relative to the package folder."""
    return sorted(
        str(path.relative_to(PACKAGE))
        for folder in (shipped_models_dir(), ros_config_dir())
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def test_shipped_models_resolve_inside_the_package(monkeypatch):
    monkeypatch.delenv("VSIS_MODELS_DIR", raising=False)
    assert models_dir() == shipped_models_dir() == PACKAGE / "models"
    assert set(SHIPPED_MODELS) <= set(available_models())
    for name in SHIPPED_MODELS:
        path = resolve_model(name)
        assert path == PACKAGE / "models" / name / "model.pt" and path.is_file()
    assert NANODET_WEIGHTS_PATH.is_file()
    assert NANODET_WEIGHTS_PATH.absolute().is_relative_to(PACKAGE)


def test_default_params_files_are_package_data():
    for kind in NODE_KINDS:
        path = default_params_file(kind)
        assert path.parent == ros_config_dir() == PACKAGE / "ros" / "config"
        sections = yaml.safe_load(path.read_text())
        assert f"/**/vsis_{kind}" in sections
    with pytest.raises(ValueError, match="no node kind 'mapping'"):
        default_params_file("mapping")


@pytest.mark.timeout(240)
def test_an_installed_wheel_finds_its_models_and_params(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(PACKAGE, source / "vis_node", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("vis_node-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    missing = [f for f in _package_data() if f"vis_node/{f}" not in names]
    assert not missing, f"package data left out of the wheel: {missing}"

    probe = (
        "import sys, vis_node\n"
        "from vis_node.perception.checkpoint import resolve_model\n"
        "from vis_node.perception.nanodet import NANODET_WEIGHTS_PATH\n"
        "from vis_node.ros.cli import default_params_files\n"
        f"paths = [resolve_model(n) for n in {SHIPPED_MODELS!r}]\n"
        "paths += [NANODET_WEIGHTS_PATH, *default_params_files()]\n"
        "assert all(p.is_file() for p in paths), paths\n"
        "print(vis_node.__file__)\n"
        "print('\\n'.join(str(p) for p in paths))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True,
        cwd=tmp_path, env=env,
    )
    printed = [Path(line) for line in result.stdout.split()]
    assert len(printed) == 1 + len(SHIPPED_MODELS) + 1 + len(NODE_KINDS)
    assert all(path.is_relative_to(site / "vis_node") for path in printed), printed
