"""Static checks of the launch files, their params YAMLs and the vsis_bringup package.

``launch`` / ``launch_ros`` are not installable from PyPI, so the launch files are
parsed (``ast`` for Python, ``xml.etree`` for XML) and every executable, node name,
parameter and remapping they mention is checked against what the nodes declare
(:mod:`vis_node.ros.params`).
"""

from __future__ import annotations

import ast
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from vis_node.ros.params import NODE_SPECS, NodeSpec

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
BRINGUP = REPO / "ros_ws" / "src" / "vsis_bringup"
PIPELINE_EXECUTABLE = "vsis_pipeline"
SPECS_BY_EXECUTABLE = {spec.executable: spec for spec in NODE_SPECS.values()}


@dataclass
class LaunchedNode:
    """What one launch entry starts."""

    executable: str
    package: str
    name: str | None
    params_files: list[Path] = field(default_factory=list)
    remap_from: list[str] = field(default_factory=list)

    def specs(self) -> list[NodeSpec]:
        """Node interfaces running in this process."""
        if self.executable == PIPELINE_EXECUTABLE:
            return list(NODE_SPECS.values())
        return [SPECS_BY_EXECUTABLE[self.executable]]


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def parse_python_launch(path: Path) -> list[LaunchedNode]:
    """The ``Node(...)`` calls of a Python launch file.

    ``parameters`` entries must be ``os.path.join(CONFIG_DIR, "<file>.yaml")`` with
    ``CONFIG_DIR`` = ``config`` beside the launch file; remappings ``("from", to)``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node"):
            continue
        kwargs = {k.arg: k.value for k in call.keywords}
        launched = LaunchedNode(
            executable=_constant(kwargs["executable"]),
            package=_constant(kwargs["package"]),
            name=_constant(kwargs["name"]) if "name" in kwargs else None,
        )
        for item in getattr(kwargs.get("parameters"), "elts", []):
            assert isinstance(item, ast.Call) and item.args[0].id == "CONFIG_DIR", ast.dump(item)
            launched.params_files.append(path.parent / "config" / _constant(item.args[1]))
        for item in getattr(kwargs.get("remappings"), "elts", []):
            launched.remap_from.append(_constant(item.elts[0]))
        nodes.append(launched)
    source = path.read_text()
    assert 'os.path.join(os.path.dirname(os.path.abspath(__file__)), "config")' in source
    return nodes


def parse_xml_launch(path: Path) -> list[LaunchedNode]:
    """The ``<node>`` elements of an XML launch file (``$(dirname)`` resolved)."""
    nodes = []
    for element in ET.parse(path).getroot().iter("node"):
        launched = LaunchedNode(
            executable=element.get("exec"), package=element.get("pkg"), name=element.get("name")
        )
        for param in element.iter("param"):
            source = param.get("from").replace("$(dirname)", str(path.parent))
            launched.params_files.append(Path(source))
        launched.remap_from = [r.get("from") for r in element.iter("remap")]
        nodes.append(launched)
    return nodes


LAUNCH_FILES = {
    "vsis.launch.py": parse_python_launch,
    "vsis.launch.xml": parse_xml_launch,
    "vsis_composed.launch.py": parse_python_launch,
}


@pytest.fixture(params=sorted(LAUNCH_FILES))
def launched(request) -> list[LaunchedNode]:
    path = LAUNCH / request.param
    assert path.is_file(), f"{path} missing"
    nodes = LAUNCH_FILES[request.param](path)
    assert nodes, f"{path} starts no node"
    return nodes


def test_executables_exist_in_the_bringup_package(launched):
    cmake = (BRINGUP / "CMakeLists.txt").read_text()
    for node in launched:
        assert node.package == "vsis_bringup"
        script = BRINGUP / "scripts" / node.executable
        assert script.is_file(), f"no executable {script}"
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert f"scripts/{node.executable}" in cmake
        modules = [spec.module for spec in node.specs()]
        module = "vis_node.ros.pipeline" if node.executable == PIPELINE_EXECUTABLE else modules[0]
        assert f"from {module} import main" in script.read_text()


def test_node_names_match_the_params_sections(launched):
    for node in launched:
        if node.executable == PIPELINE_EXECUTABLE:
            assert node.name is None, "a name would rename all three composed nodes"
        else:
            assert node.name == SPECS_BY_EXECUTABLE[node.executable].node_name


def test_every_parameter_is_declared_with_its_type(launched):
    for node in launched:
        assert node.params_files, f"{node.executable} gets no params file"
        specs = {spec.node_name: spec for spec in node.specs()}
        seen_sections = set()
        for path in node.params_files:
            assert path.is_file(), f"params file {path} missing"
            document = yaml.safe_load(path.read_text())
            for section, body in document.items():
                assert section in specs or section == "/**", f"{path}: unknown node {section}"
                seen_sections.add(section)
                declared = {
                    p.name: p
                    for spec in (specs.values() if section == "/**" else [specs[section]])
                    for p in spec.params
                }
                for name, value in body["ros__parameters"].items():
                    assert name in declared, f"{path}: {section} declares no parameter {name}"
                    default = declared[name].default
                    assert type(value) is type(default), f"{path}: {name}={value!r}"
                    if declared[name].choices:
                        assert value in declared[name].choices, f"{path}: {name}={value!r}"
        missing = set(specs) - seen_sections
        assert not missing, f"{node.executable}: no params for {missing}"


def test_every_remapping_names_a_topic_of_the_node(launched):
    for node in launched:
        topics = {t for spec in node.specs() for t in (*spec.subscribes, *spec.publishes)}
        assert node.remap_from, f"{node.executable} remaps nothing"
        for name in node.remap_from:
            assert name in topics, f"{node.executable} has no topic {name!r}"


def _summary(nodes: list[LaunchedNode]) -> list[tuple]:
    return [
        (n.executable, n.name, [p.name for p in n.params_files], sorted(n.remap_from))
        for n in nodes
    ]


def test_python_and_xml_launch_start_the_same_graph():
    python = parse_python_launch(LAUNCH / "vsis.launch.py")
    xml = parse_xml_launch(LAUNCH / "vsis.launch.xml")
    assert _summary(python) == _summary(xml)
    assert sorted(n.executable for n in python) == sorted(SPECS_BY_EXECUTABLE)


def test_bringup_installs_the_single_launch_folder():
    cmake = (BRINGUP / "CMakeLists.txt").read_text()
    assert '"${CMAKE_CURRENT_SOURCE_DIR}/../../../launch"' in cmake
    assert (BRINGUP / "../../../launch").resolve() == LAUNCH
    assert not (BRINGUP / "launch").exists(), "keep one copy of the launch files"
    package = ET.parse(BRINGUP / "package.xml").getroot()
    assert package.findtext("name") == "vsis_bringup"
    depends = {e.text for e in package.iter("exec_depend")}
    assert {"vis_msgs", "rclpy", "launch_ros"} <= depends


def test_vsis_ros_up_starts_the_launch_file_graph():
    """``vsis ros up`` runs the same modules with the same params as vsis.launch.py."""
    from vis_node.ros.cli import node_commands, ros_arguments

    launched = parse_python_launch(LAUNCH / "vsis.launch.py")
    args = ros_arguments(None, ["image:=/camera/image_raw"])
    params = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--params-file"]
    assert params == [p for node in launched for p in node.params_files]
    assert args[-2:] == ["-r", "image:=/camera/image_raw"]
    commands = node_commands(args)
    modules = [cmd[2] for cmd in commands]
    assert modules == [SPECS_BY_EXECUTABLE[node.executable].module for node in launched]
    assert all(cmd[3:] == args for cmd in commands)


def test_vsis_ros_arguments_reject_bad_input(tmp_path):
    from vis_node.io.errors import InputDataError
    from vis_node.ros.cli import ros_arguments

    with pytest.raises(InputDataError, match="params file not found"):
        ros_arguments([tmp_path / "missing.yaml"], [])
    with pytest.raises(InputDataError, match="FROM:=TO"):
        ros_arguments(None, ["image=/camera"])
