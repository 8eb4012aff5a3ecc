"""Settings dataclasses: every field is a flag and a ROS parameter with the same default."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

import pytest

from vis_node.settings import add_flags, field_docs, from_values, settings_of
from vis_node.tracking.fusion import FusionConfig
from vis_node.tracking.offline_config import OfflineConfig
from vis_node.tracking.tracker_config import TrackerConfig
from vis_node.tracking.unification import UnifierConfig

COMMAND_SETTINGS = {
    "run": {TrackerConfig: (), UnifierConfig: ("max_idle",), FusionConfig: (),
            OfflineConfig: ()},
    "track": {TrackerConfig: (), UnifierConfig: ("max_idle",)},
}
"""Command -> settings dataclass -> fields that are not its flags (max_idle follows the
tracker's max_lost_age)."""

NODE_SETTINGS = [("tracking", TrackerConfig), ("tracking", FusionConfig),
                 ("semantic", UnifierConfig)]
"""(node kind, a settings dataclass whose fields are parameters of that node)."""


def _parser(command: str) -> argparse.ArgumentParser:
    from vis_node.cli import build_parser

    parser = build_parser(command)
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices[command]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: a for a in parser._actions for option in a.option_strings}


@pytest.mark.parametrize("command", sorted(COMMAND_SETTINGS))
def test_every_setting_is_a_flag_with_its_default(command):
    flags = _flags(_parser(command))
    for config, exclude in COMMAND_SETTINGS[command].items():
        for setting in settings_of(config):
            if setting.name in exclude:
                assert setting.flag not in flags, setting.flag
                continue
            action = flags[setting.flag]
            assert action.default == setting.default, setting.flag
            assert action.dest == setting.name
            assert setting.help.split("(")[0].strip()[:40] in action.help.replace("%%", "%")
            if setting.choices:
                assert tuple(action.choices) == setting.choices


def test_run_flags_build_the_configs():
    parser = _parser("run")
    args = parser.parse_args(["in", "--out", "o"])
    for config, exclude in COMMAND_SETTINGS["run"].items():
        assert from_values(config, args, exclude=exclude) == config()
    args = parser.parse_args(["in", "--out", "o", "--max-lost-age", "7", "--no-coast",
                              "--theta", "0.2", "--offline-method", "propose-reduce",
                              "--patience", "5"])
    assert from_values(TrackerConfig, args) == TrackerConfig(max_lost_age=7, coast=False)
    assert from_values(FusionConfig, args) == FusionConfig(theta=0.2)
    assert from_values(OfflineConfig, args).offline_method == "propose-reduce"
    assert from_values(UnifierConfig, args, exclude=("max_idle",)).patience == 5
    with pytest.raises(SystemExit):
        parser.parse_args(["in", "--out", "o", "--unification-rule", "mean"])


def test_an_out_of_range_flag_is_refused_with_its_name(tmp_path, capsys):
    parser = _parser("run")
    args = parser.parse_args([str(tmp_path), "--out", str(tmp_path / "o"), "--theta", "1.5"])
    assert args.func(args) == 2
    assert "theta must lie in [0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize(("kind", "config"), NODE_SETTINGS,
                         ids=[f"{k}-{c.__name__}" for k, c in NODE_SETTINGS])
def test_every_setting_is_a_node_parameter_with_its_default(kind, config):
    from vis_node.ros.params import NODE_SPECS

    params = {p.name: p for p in NODE_SPECS[kind].params}
    for setting in settings_of(config):
        param = params[setting.name]
        assert param.default == setting.default and type(param.default) is setting.kind
        assert param.description == setting.help and param.choices == setting.choices
    values = {name: p.default for name, p in params.items()}
    assert from_values(config, values) == config()


@pytest.mark.ros
def test_nodes_declare_every_setting_with_its_default():
    from rosutil import require_ros, ros_context

    require_ros()
    from rclpy.node import Node

    from vis_node.ros.node_params import declare, read
    from vis_node.ros.params import NODE_SPECS

    with ros_context(73) as context:
        for kind, config in NODE_SETTINGS:
            node = Node(f"settings_{kind}_{config.__name__}", context=context)
            try:
                declare(node, NODE_SPECS[kind])
                values = read(node, NODE_SPECS[kind])
                for setting in settings_of(config):
                    assert values[setting.name] == setting.default, (kind, setting.name)
                assert from_values(config, values) == config()
            finally:
                node.destroy_node()


@pytest.mark.ros
def test_a_setting_its_dataclass_refuses_cannot_be_set():
    from rosutil import require_ros, ros_context

    require_ros()
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from vis_node.ros.node_params import declare
    from vis_node.ros.params import NODE_SPECS

    with ros_context(74) as context:
        node = Node("settings_refused", context=context)
        try:
            declare(node, NODE_SPECS["tracking"])
            (result,) = node.set_parameters([Parameter("min_hits", value=0)])
            assert not result.successful and "min_hits must be an integer >= 1" in result.reason
            (result,) = node.set_parameters([Parameter("confirm_window", value=3)])
            assert result.successful
            (result,) = node.set_parameters([Parameter("min_hits", value=4)])  # > window 3
            assert not result.successful and "confirm_window (3)" in result.reason
            assert node.get_parameter("min_hits").value == TrackerConfig().min_hits
        finally:
            node.destroy_node()


def test_settings_read_fields_and_their_docs():
    @dataclass(frozen=True)
    class Example:
        """An example.

        Attributes
        ----------
        low, high:
            Bounds of the range, in ``pixels`` (see :class:`~vis_node.Thing`).
        mode:
            How it works.
        """

        low: int = 1
        high: int = 5
        mode: str = field(default="a", metadata={"choices": ("a", "b")})

    docs = field_docs(Example)
    assert docs == {"low": "Bounds of the range, in pixels (see Thing).",
                    "high": "Bounds of the range, in pixels (see Thing).",
                    "mode": "How it works."}
    assert [s.flag for s in settings_of(Example, exclude=("low",))] == ["--high", "--mode"]
    parser = argparse.ArgumentParser()
    add_flags(parser, Example)
    assert from_values(Example, parser.parse_args(["--high", "9"])) == Example(high=9)
    with pytest.raises(TypeError, match="no field"):
        settings_of(Example, exclude=("width",))


def test_settings_refuse_undocumented_or_unsupported_fields():
    @dataclass(frozen=True)
    class Undocumented:
        """No attributes section."""

        size: int = 1

    @dataclass(frozen=True)
    class Listy:
        """A list.

        Attributes
        ----------
        sizes:
            Sizes.
        """

        sizes: tuple = (1, 2)

    with pytest.raises(ValueError, match="Undocumented.size is not documented"):
        settings_of(Undocumented)
    with pytest.raises(TypeError, match="Listy.sizes"):
        settings_of(Listy)


def test_each_default_is_written_once():
    """Functions and classes that take a setting default to the dataclass's value."""
    import inspect

    from vis_node.pipeline.online import OnlinePipeline
    from vis_node.tracking.fusion import fuse_instances
    from vis_node.tracking.motion_gate import MotionSaliencyGate
    from vis_node.tracking.offline import recurrent_propagation
    from vis_node.tracking.unification import OnlineUnifier

    fusion = FusionConfig()
    for function in (fuse_instances, MotionSaliencyGate, recurrent_propagation):
        parameters = inspect.signature(function).parameters
        assert parameters["theta"].default == fusion.theta
        assert parameters["beta2"].default == fusion.beta2
    assert inspect.signature(recurrent_propagation).parameters["max_sweeps"].default == (
        OfflineConfig().max_sweeps
    )
    assert UnifierConfig().max_idle == TrackerConfig().max_lost_age
    assert OnlineUnifier().config == UnifierConfig()
    from vis_node.pipeline.backends import Backend

    backend = Backend("none", ("background", "thing"), lambda image, stamp_ns: None, None)
    pipeline = OnlinePipeline.build(backend, tracker_config=TrackerConfig(max_lost_age=4))
    assert pipeline.unify.unifier.config == dataclasses.replace(UnifierConfig(), max_idle=4)
