"""The interface of each VSIS node: name, executable, parameters and topics.

One table per node, shared by the nodes (which declare the parameters with
descriptors), the composition, the CLI and the launch-file test (which checks that
launch files only name parameters and topics that exist). Parameters load from
``--ros-args --params-file YAML`` as for any ROS node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vis_node.synth.generator import CATEGORIES
from vis_node.tracking.tracker import TrackerConfig

_TRACKER = TrackerConfig()
"""Tracker defaults, so the tracking node's parameters match ``vsis run`` / ``vsis track``."""

ParamValue = bool | int | float | str | list[str]


@dataclass(frozen=True)
class Param:
    """One node parameter.

    Attributes
    ----------
    name:
        Parameter name.
    default:
        Default value; its type is the parameter's type.
    description:
        What it does (shown by ``ros2 param describe``).
    choices:
        Allowed values of a string parameter (empty = free text).
    low, high:
        Inclusive range of a numeric parameter (``None`` = unbounded).
    """

    name: str
    default: ParamValue
    description: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class NodeSpec:
    """Name, executable, parameters and topics of one node.

    Attributes
    ----------
    kind:
        ``perception``, ``tracking`` or ``semantic``.
    node_name:
        Default ROS node name (the key of its section in a params YAML).
    executable:
        Executable installed by ``vsis_bringup`` into ``lib/vsis_bringup``.
    module:
        Python module with the node's ``main``.
    params:
        Declared parameters.
    subscribes, publishes:
        Relative topic names (remap them in launch files).
    """

    kind: str
    node_name: str
    executable: str
    module: str
    params: tuple[Param, ...]
    subscribes: tuple[str, ...]
    publishes: tuple[str, ...]

    def defaults(self) -> dict[str, ParamValue]:
        """Parameter name -> default value."""
        return {p.name: p.default for p in self.params}


QOS_CHOICES = ("sensor", "reliable")
MASK_CHOICES = ("cropped", "rle", "none")
RUNTIME_CHOICES = ("onnx", "torch", "tensorrt")

COMMON_PARAMS: tuple[Param, ...] = (
    Param("autostart", True, "Configure and activate at start-up (standalone executables)."),
    Param(
        "qos",
        "sensor",
        "QoS of the data topics: 'sensor' (best effort, keep last 1; live cameras) or "
        "'reliable' (keep last 100; bag replay and evaluation).",
        choices=QOS_CHOICES,
    ),
    Param(
        "expected_frame_id",
        "",
        "Only accept inputs whose header.frame_id equals this ('' accepts any).",
    ),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", low=0.05, high=60.0),
    Param(
        "warn_period",
        5.0,
        "Shortest seconds between two warnings of one kind.",
        low=0.0,
        high=3600.0,
    ),
)

PERCEPTION = NodeSpec(
    kind="perception",
    node_name="vsis_perception",
    executable="perception_node",
    module="vis_node.ros.perception_node",
    params=COMMON_PARAMS
    + (
        Param(
            "model",
            "synth",
            "Shipped model name, model.pt path or model folder; or 'gt:<DAVIS root>' for "
            "the ground-truth oracle (evaluation only, see vis_node.ros.predictors).",
        ),
        Param(
            "runtime",
            "onnx",
            "Inference runtime: 'onnx' (ONNX Runtime, CPU default), 'torch' or 'tensorrt' "
            "(NVIDIA GPU; engines cached per model, GPU and TensorRT version).",
            choices=RUNTIME_CHOICES,
        ),
        Param("device", "cpu", "Torch device of the 'torch' runtime ('cpu', 'cuda', 'cuda:1')."),
        Param(
            "mask_encoding",
            "cropped",
            "Per-instance mask in the output: 'cropped' mono8, 'rle' or 'none'.",
            choices=MASK_CHOICES,
        ),
        Param("gt_sequence", "", "Oracle only: sequence of the root ('' = the first)."),
        Param(
            "gt_fps", 30.0, "Oracle only: frame rate giving frame index = stamp * fps.",
            low=0.001, high=10000.0,
        ),
        Param("gt_seed", 0, "Oracle only: seed of the per-frame shuffle of instances.", low=0),
    ),
    subscribes=("image", "image/compressed"),
    publishes=("instances",),
)

TRACKING = NodeSpec(
    kind="tracking",
    node_name="vsis_tracking",
    executable="tracking_node",
    module="vis_node.ros.tracking_node",
    params=COMMON_PARAMS
    + (
        Param(
            "flow",
            "dis",
            "Optical flow for identity propagation: 'dis', 'farneback' or 'none'.",
            choices=("dis", "farneback", "none"),
        ),
        Param("reid", True, "Re-identify lost tracks (gated, relative appearance test)."),
        Param("propagation_iou", _TRACKER.propagation_iou,
              "Smallest IoU of a warped track and a detection.", low=0.0, high=1.0),
        Param("min_hits", _TRACKER.min_hits, "Matched frames that confirm a track.",
              low=1, high=1000),
        Param("max_lost_age", _TRACKER.max_lost_age, "Frames a lost track is remembered.",
              low=0, high=100000),
        Param(
            "match_capacity", 8,
            "Most instance / image messages waiting for their partner stamp.", low=1, high=1000,
        ),
        Param(
            "mask_encoding", "cropped", "Per-instance mask in the output.", choices=MASK_CHOICES
        ),
    ),
    subscribes=("instances", "image", "image/compressed"),
    publishes=("tracked_instances",),
)

SEMANTIC = NodeSpec(
    kind="semantic",
    node_name="vsis_semantic",
    executable="semantic_node",
    module="vis_node.ros.semantic_node",
    params=COMMON_PARAMS
    + (
        Param(
            "class_names",
            ["background", *CATEGORIES],
            "Label map (index = class id, 0 = background; default: the synth model's); "
            "must match the length of the instances' class_scores.",
        ),
        Param("model_name", "synth", "Model name written into the label map."),
        Param("margin", 0.1, "Lead in mean probability a new class needs to take over.",
              low=0.0, high=0.999),
        Param("patience", 3, "Frames the new class must lead before the label switches.",
              low=1, high=1000),
        Param(
            "match_capacity", 8, "Most image / instance messages waiting for the overlay.",
            low=1, high=1000,
        ),
        Param(
            "mask_encoding", "cropped", "Per-instance mask in the output.", choices=MASK_CHOICES
        ),
    ),
    subscribes=("tracked_instances", "image"),
    publishes=("unified_instances", "instance_ids", "semantic", "label_map", "overlay"),
)

NODE_SPECS: dict[str, NodeSpec] = {s.kind: s for s in (PERCEPTION, TRACKING, SEMANTIC)}
"""Node kind -> interface."""


def declare(node: Any, spec: NodeSpec) -> None:
    """Declare every parameter of ``spec`` on ``node`` with a descriptor."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    for param in spec.params:
        descriptor = ParameterDescriptor(description=param.description)
        if param.choices:
            descriptor.additional_constraints = f"one of: {', '.join(param.choices)}"
        if isinstance(param.default, float) and (param.low is not None or param.high is not None):
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(param.low if param.low is not None else -1e300),
                    to_value=float(param.high if param.high is not None else 1e300),
                )
            ]
        elif (
            isinstance(param.default, int)
            and not isinstance(param.default, bool)
            and (param.low is not None or param.high is not None)
        ):
            descriptor.integer_range = [
                IntegerRange(
                    from_value=int(param.low if param.low is not None else -(2**62)),
                    to_value=int(param.high if param.high is not None else 2**62),
                )
            ]
        node.declare_parameter(param.name, param.default, descriptor)


def read(node: Any, spec: NodeSpec) -> dict[str, Any]:
    """Current parameter values of ``node``, checked against ``spec``.

    Raises
    ------
    ValueError
        A string parameter outside its choices; the message names it and the choices.
    """
    values: dict[str, Any] = {}
    for param in spec.params:
        value = node.get_parameter(param.name).value
        if param.choices and value not in param.choices:
            raise ValueError(
                f"parameter {param.name}={value!r}: choose one of {', '.join(param.choices)}"
            )
        values[param.name] = list(value) if isinstance(param.default, list) else value
    return values
