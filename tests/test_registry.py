"""Name -> builder registries: every name builds, and every choice list comes from them."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from vis_node.registry import BACKBONES, FLOWS, OFFLINE_METHODS, RUNTIMES, Entry, Registry

ALL = {"backbone": BACKBONES, "runtime": RUNTIMES, "flow": FLOWS,
       "offline method": OFFLINE_METHODS}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_every_entry_imports_a_callable_builder(kind):
    registry = ALL[kind]
    assert registry.kind == kind and registry.default == registry.names()[0]
    for name in registry:
        assert callable(registry.get(name)), name
        assert registry.check(name) == name
    with pytest.raises(ValueError, match=f"{kind}='bogus': choose one of "
                                         f"{', '.join(registry.names())}"):
        registry.get("bogus")


def test_registry_refuses_bad_tables():
    with pytest.raises(ValueError, match="at least one"):
        Registry("thing", ())
    with pytest.raises(ValueError, match="repeats a name"):
        Registry("thing", (Entry("a", "m:f", ""), Entry("a", "m:g", "")))
    with pytest.raises(ValueError, match="not 'module:attribute'"):
        Registry("thing", (Entry("a", "m.f", ""),))


def test_names_are_listed_without_importing_torch_or_cv2():
    probe = (
        "import sys\n"
        "from vis_node.registry import BACKBONES, FLOWS, OFFLINE_METHODS, RUNTIMES\n"
        "for r in (BACKBONES, FLOWS, OFFLINE_METHODS, RUNTIMES): r.names(); r.help()\n"
        "print(sorted({'torch', 'cv2'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_builders_make_what_the_names_say():
    from vis_node.perception.backbone import build_backbone
    from vis_node.tracking.flow import DISFlow, FarnebackFlow

    assert isinstance(FLOWS.build("dis"), DISFlow)
    assert isinstance(FLOWS.build("farneback"), FarnebackFlow)
    assert FLOWS.build("none") is None
    backbone = build_backbone(name="resnet50", pretrained=True)
    assert backbone.out_channels == [512, 1024, 2048]


def _choices(parser: argparse.ArgumentParser, flag: str) -> tuple[tuple[str, ...], object]:
    (action,) = [a for a in parser._actions if flag in a.option_strings]
    return tuple(action.choices), action.default


def _command_parser(command: str) -> argparse.ArgumentParser:
    from vis_node.cli import build_parser

    parser = build_parser(command)
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices[command]


def test_command_line_choices_come_from_the_registries():
    run = _command_parser("run")
    assert _choices(run, "--runtime") == (RUNTIMES.names(), RUNTIMES.default)
    assert _choices(run, "--offline-method") == (OFFLINE_METHODS.names(),
                                                 OFFLINE_METHODS.default)
    assert _choices(_command_parser("track"), "--flow") == (FLOWS.names(), FLOWS.default)
    bench = _command_parser("bench-model")
    assert _choices(bench, "--backbones") == (BACKBONES.names(), list(BACKBONES.names()))


def test_ros_parameter_choices_come_from_the_registries():
    from vis_node.ros.params import NODE_SPECS

    params = {(kind, p.name): p for kind, spec in NODE_SPECS.items() for p in spec.params}
    runtime, flow = params["perception", "runtime"], params["tracking", "flow"]
    assert (runtime.choices, runtime.default) == (RUNTIMES.names(), RUNTIMES.default)
    assert (flow.choices, flow.default) == (FLOWS.names(), FLOWS.default)
