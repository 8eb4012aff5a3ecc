"""The launch files, their params YAMLs and the vsis_bringup package, against ``vsis ros``.

``launch`` / ``launch_ros`` are not installable from PyPI, so the Python launch files
run against small recording stand-ins of ``launch`` and ``launch_ros`` (what each
``Node`` gets: executable, name, namespace, parameters, remappings), and the XML file
is parsed. Every node, parameter and topic name they produce is checked against what
the nodes declare (:mod:`vis_node.ros.params`) and against the ROS arguments of
``vsis ros up`` / ``vsis ros pipeline`` for the same graph arguments.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from vis_node.ros.graph import GRAPH_ARGUMENTS, topic_names
from vis_node.ros.params import NODE_SPECS

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
BRINGUP = REPO / "ros_ws" / "src" / "vsis_bringup"
PIPELINE_EXECUTABLE = "vsis_pipeline"
SPECS_BY_EXECUTABLE = {spec.executable: spec for spec in NODE_SPECS.values()}
KIND_BY_MODULE = {spec.module: kind for kind, spec in NODE_SPECS.items()}
USER_ARGS = {
    "namespace": "robot1/vsis", "image": "/camera/image_raw", "model": "davis",
    "runtime": "torch", "device": "cuda:0", "use_sim_time": "true",
}


class _Configuration:
    """Stand-in of ``launch.substitutions.LaunchConfiguration``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


def _stub_modules() -> dict[str, types.ModuleType]:
    """``launch`` / ``launch_ros`` stand-ins that record what a launch file builds."""
    launch = types.ModuleType("launch")
    launch.LaunchDescription = list
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = lambda name, default_value, description: (
        "argument", name, default_value, description
    )
    actions.OpaqueFunction = lambda function: ("opaque", function)
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = _Configuration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = lambda **kwargs: kwargs
    return {
        "launch": launch, "launch.actions": actions, "launch.substitutions": substitutions,
        "launch_ros": launch_ros, "launch_ros.actions": ros_actions,
    }


def run_launch_file(
    name: str, overrides: dict[str, str] | None = None, folder: Path = LAUNCH
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Declared arguments (name -> default) and the ``Node`` kwargs of a Python launch file.

    ``folder`` holds the launch file (the checkout's ``launch/`` unless told otherwise).
    """
    saved = {k: sys.modules.get(k) for k in _stub_modules()}
    sys.modules.update(_stub_modules())
    try:
        spec = importlib.util.spec_from_file_location(name.replace(".", "_"), folder / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        arguments = {e[1]: e[2] for e in description if e[0] == "argument"}
        context = {**arguments, **(overrides or {})}
        nodes = [n for e in description if e[0] == "opaque" for n in e[1](context)]
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return arguments, nodes


def _kinds(node: dict[str, Any]) -> list[str]:
    if node["executable"] == PIPELINE_EXECUTABLE:
        return list(NODE_SPECS)
    return [SPECS_BY_EXECUTABLE[node["executable"]].kind]


@pytest.fixture(params=["vsis.launch.py", "vsis_composed.launch.py"])
def launched(request) -> list[dict[str, Any]]:
    _, nodes = run_launch_file(request.param)
    assert nodes, f"{request.param} starts no node"
    return nodes


def test_launch_arguments_are_the_graph_arguments():
    wanted = {"namespace", "model", "runtime", "device", "params_file", "use_sim_time", "image"}
    defaults = {a.name: a.default for a in GRAPH_ARGUMENTS}
    assert set(defaults) == wanted
    for name in ("vsis.launch.py", "vsis_composed.launch.py"):
        arguments, _ = run_launch_file(name)
        assert arguments == defaults, name


def test_xml_launch_includes_the_python_one_with_every_argument():
    root = ET.parse(LAUNCH / "vsis.launch.xml").getroot()
    declared = {a.get("name"): a.get("default") for a in root.findall("arg")}
    assert declared == {a.name: a.default for a in GRAPH_ARGUMENTS}
    (include,) = root.findall("include")
    assert include.get("file") == "$(dirname)/vsis.launch.py"
    passed = {a.get("name"): a.get("value") for a in include.findall("arg")}
    assert passed == {name: f"$(var {name})" for name in declared}
    assert not root.findall("node"), "nodes belong to vsis.launch.py alone"


def test_executables_exist_in_the_bringup_package(launched):
    cmake = (BRINGUP / "CMakeLists.txt").read_text()
    for node in launched:
        assert node["package"] == "vsis_bringup"
        script = BRINGUP / "scripts" / node["executable"]
        assert script.is_file(), f"no executable {script}"
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert f"scripts/{node['executable']}" in cmake
        module = (
            "vis_node.ros.pipeline" if node["executable"] == PIPELINE_EXECUTABLE
            else SPECS_BY_EXECUTABLE[node["executable"]].module
        )
        assert f"from {module} import main" in script.read_text()


def test_node_names_match_the_params_sections(launched):
    for node in launched:
        if node["executable"] == PIPELINE_EXECUTABLE:
            assert "name" not in node, "a name would rename all three composed nodes"
        else:
            assert node["name"] == SPECS_BY_EXECUTABLE[node["executable"]].node_name


def _section_node(section: str) -> str:
    """Node name of a params section (``/**/vsis_tracking`` or ``vsis_tracking``)."""
    return section.removeprefix("/**/")


def test_every_parameter_is_declared_with_its_type(launched):
    for node in launched:
        files = [Path(p) for p in node["parameters"] if isinstance(p, str)]
        assert files, f"{node['executable']} gets no params file"
        specs = {NODE_SPECS[k].node_name: NODE_SPECS[k] for k in _kinds(node)}
        seen_sections = set()
        for path in files:
            assert path.is_file(), f"params file {path} missing"
            for section, body in yaml.safe_load(path.read_text()).items():
                assert section.startswith("/**/"), f"{path}: {section} misses namespaced nodes"
                assert _section_node(section) in specs, f"{path}: unknown node {section}"
                seen_sections.add(_section_node(section))
                declared = {p.name: p for p in specs[_section_node(section)].params}
                for name, value in body["ros__parameters"].items():
                    assert name in declared, f"{path}: {section} declares no parameter {name}"
                    default = declared[name].default
                    assert type(value) is type(default), f"{path}: {name}={value!r}"
                    assert value == default, (
                        f"{path}: {name}={value!r} differs from the code default {default!r}; "
                        "the shipped files must give the graph vsis run's settings"
                    )
                    if declared[name].choices:
                        assert value in declared[name].choices, f"{path}: {name}={value!r}"
        missing = set(specs) - seen_sections
        assert not missing, f"{node['executable']}: no params for {missing}"


def test_every_remapping_names_a_topic_of_the_node(launched):
    for node in launched:
        topics = {t for k in _kinds(node) for s in [NODE_SPECS[k]] for t in (*s.subscribes, *s.publishes)}
        for source, _ in node["remappings"]:
            assert source in topics, f"{node['executable']} has no topic {source!r}"


def _cli_graph(ros_args: list[str]) -> tuple[str, list[tuple[str, str]], list[str], dict[str, str]]:
    """Namespace, remappings, params files and ``-p`` values of ``vsis ros`` arguments."""
    namespace, remaps, files, values = "", [], [], {}
    for flag, value in zip(ros_args, ros_args[1:]):
        if flag == "-r":
            source, target = value.split(":=")
            if source == "__ns":
                namespace = target
            else:
                remaps.append((source, target))
        elif flag == "--params-file":
            files.append(value)
        elif flag == "-p":
            name, text = value.split(":=")
            values[name] = text
    return namespace, remaps, files, values


def effective_params(files: list[str], node_name: str) -> dict[str, Any]:
    """Parameters a node named ``node_name`` gets from ``files`` (later files win)."""
    values: dict[str, Any] = {}
    for path in files:
        for section, body in yaml.safe_load(Path(path).read_text()).items():
            if section in ("/**", f"/**/{node_name}", node_name):
                values.update(body["ros__parameters"])
    return values


def _launch_overrides(node: dict[str, Any]) -> dict[str, str]:
    (overrides,) = [p for p in node["parameters"] if isinstance(p, dict)]
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in overrides.items()}


@pytest.mark.parametrize("user_args", [{}, USER_ARGS], ids=["defaults", "user"])
def test_vsis_ros_up_and_the_launch_file_give_identical_topic_names(user_args, tmp_path):
    """Same namespace, remappings, parameters, hence same fully qualified topics."""
    from vis_node.ros.cli import node_commands, ros_arguments

    if user_args:
        user_args = {**user_args, "params_file": str(tmp_path / "mine.yaml")}
        (tmp_path / "mine.yaml").write_text("/**:\n  ros__parameters:\n    warn_period: 1.0\n")
    _, launched_nodes = run_launch_file("vsis.launch.py", user_args)
    commands = node_commands(ros_arguments(None, [], user_args))
    assert [KIND_BY_MODULE[c[2]] for c in commands] == [k for n in launched_nodes for k in _kinds(n)]
    launch_topics, cli_topics = {}, {}
    for node, command in zip(launched_nodes, commands):
        (kind,) = _kinds(node)
        namespace, remaps, files, values = _cli_graph(command[4:])
        name = NODE_SPECS[kind].node_name
        assert effective_params(files, name) == effective_params(node["parameters"][:-1], name)
        assert values == _launch_overrides(node)
        launch_topics[kind] = topic_names(kind, node["namespace"], node["remappings"])
        cli_topics[kind] = topic_names(kind, namespace, remaps)
    assert launch_topics == cli_topics
    expected_ns = "/robot1/vsis" if user_args else ""
    assert launch_topics["semantic"]["unified_instances"] == f"{expected_ns}/unified_instances"
    image = "/camera/image_raw" if user_args else f"{expected_ns}/image"
    assert {t["image"] for t in launch_topics.values()} == {image}
    assert {t["image/compressed"] for t in launch_topics.values()} == {f"{image}/compressed"}
    if user_args:
        perception = effective_params(files, "vsis_perception")
        assert perception["warn_period"] == 1.0
    label_maps = {t["label_map"] for t in launch_topics.values()}
    assert label_maps == {f"{expected_ns}/label_map"}, "the label map must reach every node"


def test_composed_launch_matches_vsis_ros_pipeline():
    from vis_node.ros.cli import ros_arguments

    (node,) = run_launch_file("vsis_composed.launch.py", USER_ARGS)[1]
    namespace, remaps, files, values = _cli_graph(ros_arguments(None, [], USER_ARGS))
    assert node["executable"] == PIPELINE_EXECUTABLE
    assert (node["namespace"], node["remappings"]) == (USER_ARGS["namespace"], remaps)
    assert "/" + node["namespace"] == namespace
    assert files == node["parameters"][:-1] and values == _launch_overrides(node)


def test_bringup_installs_the_single_launch_folder():
    cmake = (BRINGUP / "CMakeLists.txt").read_text()
    assert '"${CMAKE_CURRENT_SOURCE_DIR}/../../../launch"' in cmake
    assert (BRINGUP / "../../../launch").resolve() == LAUNCH
    assert not (BRINGUP / "launch").exists(), "keep one copy of the launch files"
    package = ET.parse(BRINGUP / "package.xml").getroot()
    assert package.findtext("name") == "vsis_bringup"
    depends = {e.text for e in package.iter("exec_depend")}
    assert {"vis_msgs", "rclpy", "launch_ros"} <= depends


@pytest.mark.parametrize("name", ["vsis.launch.py", "vsis_composed.launch.py"])
def test_launch_files_find_their_params_in_the_installed_package(tmp_path, name):
    """Copied alone (as colcon installs them), the launch files still find their YAMLs."""
    import vis_node

    shutil.copy(LAUNCH / name, tmp_path / name)
    _, nodes = run_launch_file(name, folder=tmp_path)
    package = Path(vis_node.__file__).resolve().parent
    files = [Path(p) for node in nodes for p in node["parameters"] if isinstance(p, str)]
    assert len(files) == len(NODE_SPECS)
    for path in files:
        assert path.is_file() and path.absolute().is_relative_to(package / "ros" / "config")


def test_vsis_ros_arguments_reject_bad_input(tmp_path):
    from vis_node.structures.errors import InputDataError
    from vis_node.ros.cli import ros_arguments

    with pytest.raises(InputDataError, match="params file not found"):
        ros_arguments([tmp_path / "missing.yaml"], [])
    with pytest.raises(InputDataError, match="params file not found"):
        ros_arguments(None, [], {"params_file": str(tmp_path / "missing.yaml")})
    with pytest.raises(InputDataError, match="FROM:=TO"):
        ros_arguments(None, ["image=/camera"])
    with pytest.raises(ValueError, match="use_sim_time must be true or false"):
        ros_arguments(None, [], {"use_sim_time": "yes"})
