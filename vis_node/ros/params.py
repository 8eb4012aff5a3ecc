"""The interface of each VSIS node: name, executable, parameters and topics.

One table per node, shared by the nodes (which declare the parameters with
descriptors, :mod:`vis_node.ros.node_params`), the composition, the CLI and the
launch-file test (which checks that launch files only name parameters and topics that
exist). Parameters load from ``--ros-args --params-file YAML`` as for any ROS node.

The settings of the core stages are not written here: every field of
:class:`~vis_node.tracking.tracker.TrackerConfig` (tracking node),
:class:`~vis_node.tracking.unification.UnifierConfig` (semantic node) and
:class:`~vis_node.tracking.fusion.FusionConfig` (tracking node, motion gate) is a
parameter of the same name, default and description (:func:`config_params`), as it is
a flag of ``vsis run`` (:mod:`vis_node.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vis_node import DEFAULT_MODEL
from vis_node.registry import FLOWS, RUNTIMES
from vis_node.settings import settings_of
from vis_node.tracking.fusion import FusionConfig
from vis_node.tracking.tracker import TrackerConfig
from vis_node.tracking.unification import UnifierConfig

if TYPE_CHECKING:
    from vis_node.perception.salient_config import SalientOverrides

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
    pattern:
        Regular expression a free-text string parameter must match in full ('' = any).
    low, high:
        Inclusive range of a numeric parameter (``None`` = unbounded).
    settings:
        The settings dataclass the parameter is a field of (:func:`config_params`), whose
        own checks a new value must pass; ``None`` for the others.
    """

    name: str
    default: ParamValue
    description: str
    choices: tuple[str, ...] = ()
    pattern: str = ""
    low: float | None = None
    high: float | None = None
    settings: type | None = None


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


def config_params(cls: type) -> tuple[Param, ...]:
    """One parameter per field of settings dataclass ``cls``: name, default, choices and
    description (the field's text under ``Attributes``) taken from the dataclass.

    Ranges are the dataclass's own checks: a ``ros2 param set`` the dataclass refuses,
    together with the node's other current values, is refused with its message
    (:func:`vis_node.ros.node_params.validate`), and so is a params file at configure.
    """
    return tuple(
        Param(s.name, s.default, s.help, choices=s.choices, settings=cls)
        for s in settings_of(cls)
    )


DEFAULT_MAX_PIXELS = 3840 * 2160
"""Largest image (pixels) a node decodes by default: 4K UHD."""

INPUT_QOS_CHOICES = ("sensor", "reliable")
OUTPUT_QOS_CHOICES = ("reliable", "sensor")
MASK_CHOICES = ("cropped", "rle", "none")
FRAMES_CHOICES = ("newest", "every")
TRANSPORT_CHOICES = ("raw", "compressed")
EXECUTOR_CHOICES = ("events", "single")
TRANSPORT_TOPICS = {"raw": "image", "compressed": "image/compressed"}
"""``image_transport`` value -> the one image topic a node subscribes to."""
REFINER_FLIP_CHOICES = {"model": None, "on": True, "off": False}
"""Perception parameter ``refiner_flip`` -> ``SalientOverrides.refiner_flip``."""


def salient_overrides(config: dict[str, ParamValue]) -> SalientOverrides:
    """The perception parameters ``refiner_flip``, ``refiner_flip_max_instances`` and
    ``saliency_threshold`` as the model settings they replace (``model`` or a negative
    number: the model's own, ``None``)."""
    from vis_node.perception.salient_config import SalientOverrides

    limit = int(config["refiner_flip_max_instances"])
    threshold = float(config["saliency_threshold"])
    return SalientOverrides(
        refiner_flip=REFINER_FLIP_CHOICES[config["refiner_flip"]],
        refiner_flip_max_instances=None if limit < 0 else limit,
        saliency_threshold=None if threshold < 0 else threshold,
    )


OPENCV_THREADS = Param(
    "opencv_threads", 1,
    "OpenCV worker threads of this node's process (0 = OpenCV's default, one per core). "
    "The node's OpenCV calls (flow, resizing, painting) are short; on 854x480 frames a "
    "pool of two threads spent 17.4 ms of CPU per frame on them for 12.3 ms of wall time, "
    "one thread 12.7 ms for 12.8 ms: CPU the model needs on a machine with few cores. "
    "Process-wide: in a composed graph it applies to every node of the process.",
    low=0, high=1024,
)
"""The OpenCV thread-pool size of the tracking and semantic nodes (applied at configure)."""

COMMON_PARAMS: tuple[Param, ...] = (
    Param("autostart", True, "Configure and activate at start-up (standalone executables)."),
    Param(
        "executor",
        "events",
        "Executor of a node run as its own process (vsis ros up, the launch files, the node "
        "executables): 'events' (rclpy's EventsExecutor, an event queue in C++: on 854x480 "
        "frames about 1.7 ms less CPU per frame in the tracking node and 1.8 ms in the "
        "semantic node) or 'single' (rclpy's SingleThreadedExecutor). Read once at start; "
        "the composed pipeline runs its nodes on one MultiThreadedExecutor instead.",
        choices=EXECUTOR_CHOICES,
    ),
    Param(
        "input_qos",
        "sensor",
        "QoS of the subscriptions: 'sensor' (best effort, keep last 1; matches any "
        "publisher, live cameras) or 'reliable' (keep last 100; a reliable camera, bag "
        "replay and evaluation). Which frames the perception node runs is its 'frames'.",
        choices=INPUT_QOS_CHOICES,
    ),
    Param(
        "output_qos",
        "reliable",
        "QoS of the data outputs: 'reliable' (keep last 10; every subscriber receives "
        "them, RViz and default-QoS nodes included) or 'sensor' (best effort, keep last 1).",
        choices=OUTPUT_QOS_CHOICES,
    ),
    Param(
        "image_transport",
        "raw",
        "The one camera topic a node subscribes to: 'raw' (sensor_msgs/Image on 'image') "
        "or 'compressed' (sensor_msgs/CompressedImage on 'image/compressed').",
        choices=TRANSPORT_CHOICES,
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
    Param(
        "max_image_pixels",
        DEFAULT_MAX_PIXELS,
        "Largest camera image (width x height) decoded; a larger raw or compressed image "
        "is rejected from its header, before any pixel is decoded.",
        low=1,
    ),
    Param(
        "max_instance_pixels",
        DEFAULT_MAX_PIXELS,
        "Largest image size (width x height) an instance message may declare; checked "
        "before its masks are allocated.",
        low=1,
    ),
    Param(
        "max_message_instances",
        100,
        "Most instances in one message (Mask R-CNN keeps 100 per image); a message with "
        "more is rejected before decoding.",
        low=1,
        high=100000,
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
            DEFAULT_MODEL,
            "Shipped model name, model.pt path or model folder; or 'gt:<DAVIS root>' for "
            "the ground-truth oracle (evaluation only, see vis_node.evaluation.oracle).",
        ),
        Param(
            "runtime",
            RUNTIMES.default,
            f"Inference runtime ({RUNTIMES.help()}); TensorRT engines are cached per "
            "model, GPU and TensorRT version.",
            choices=RUNTIMES.names(),
        ),
        Param(
            "device",
            "auto",
            "Inference device: 'auto' (a GPU for 'tensorrt', the CPU otherwise), 'cpu', "
            "'cuda' or 'cuda:N'; an unusable GPU falls back to the CPU with a logged reason.",
            pattern=r"auto|cpu|cuda(:[0-9]+)?",
        ),
        Param(
            "threads", 0,
            "CPU inference threads (0 = the runtime's default, one per core); ignored on "
            "a GPU. With few cores, leaving one to the other nodes keeps the model's pace "
            "steady (scripts/measure_graph_ratios.py --threads).",
            low=0, high=1024,
        ),
        Param(
            "refiner_flip", "model",
            "Models with a mask refiner: also refine each instance mirrored left-right and "
            "average the two maps ('on'), or not ('off': half the refiner's cost per "
            "instance, about 0.004 less held-out J&F for 'real'); 'model' keeps the "
            "model's own setting (on for 'real'). Models without a refiner ignore it.",
            choices=tuple(REFINER_FLIP_CHOICES),
        ),
        Param(
            "refiner_flip_max_instances", -1,
            "Models with a mask refiner: the mirrored pass only on frames with at most "
            "this many instances (0: every frame; -1: the model's own setting), so a "
            "crowded frame costs one refiner crop per instance instead of two.",
            low=-1, high=1024,
        ),
        Param(
            "saliency_threshold", -1.0,
            "Salient models: candidates whose saliency reaches this are reported (-1: the "
            "model's own, 0.5 for 'real'). Lower reports the objects the model ranks as "
            "less salient too (spectators, parked cars: up to the model's max_instances), "
            "higher only the clearest one.",
            low=-1.0, high=1.0,
        ),
        Param(
            "frames",
            "newest",
            "Frames arriving while the model is busy: 'newest' (live cameras: a newer frame "
            "replaces the waiting one, counted as dropped, so latency stays within about two "
            "inference times) or 'every' (bag replay and evaluation: frames wait and run in "
            "order, up to the input QoS depth; needs input_qos 'reliable'; the tracking "
            "node holds match_capacity images, so a longer backlog loses results there: "
            "vsis replay keeps at most two frames waiting).",
            choices=FRAMES_CHOICES,
        ),
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
        Param(
            "score_threshold", 0.0,
            "Drop instances whose saliency score is below this (0 keeps all).",
            low=0.0, high=1.0,
        ),
        Param(
            "class_allow", [],
            "Keep only instances whose class is one of these names of the model's label "
            "map (empty keeps all).",
        ),
        Param(
            "max_instances", 0,
            "Keep at most this many instances, the most salient first (0 = no limit).",
            low=0, high=100000,
        ),
        Param(
            "min_mask_area", 0, "Drop instances whose mask covers fewer pixels (0 keeps all).",
            low=0, high=2**31 - 1,
        ),
    ),
    subscribes=("image", "image/compressed"),
    publishes=("instances", "inference_started", "label_map"),
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
            FLOWS.default,
            f"Optical flow for identity propagation ({FLOWS.help()}).",
            choices=FLOWS.names(),
        ),
        Param("reid", True, "Re-identify lost tracks (gated, relative appearance test)."),
        *config_params(TrackerConfig),
        *config_params(FusionConfig),
        OPENCV_THREADS,
        Param(
            "match_capacity", 8,
            "Most instance / image messages waiting for their partner stamp.", low=1, high=1000,
        ),
        Param(
            "mask_encoding", "cropped", "Per-instance mask in the output.", choices=MASK_CHOICES
        ),
    ),
    subscribes=("instances", "inference_started", "label_map", "image", "image/compressed"),
    publishes=("tracked_instances",),
)

SEMANTIC = NodeSpec(
    kind="semantic",
    node_name="vsis_semantic",
    executable="semantic_node",
    module="vis_node.ros.semantic_node",
    params=COMMON_PARAMS
    + (
        *config_params(UnifierConfig),
        OPENCV_THREADS,
        Param(
            "match_capacity", 8, "Most image / instance messages waiting for the overlay.",
            low=1, high=1000,
        ),
        Param(
            "max_hypotheses", 5,
            "Class hypotheses per vision_msgs detection: the unified class, then the most "
            "probable others (0 = every class with a non-zero probability).",
            low=0, high=100000,
        ),
        Param(
            "mask_encoding", "cropped", "Per-instance mask in the output.", choices=MASK_CHOICES
        ),
    ),
    subscribes=(
        "tracked_instances", "inference_started", "label_map", "image", "image/compressed"
    ),
    publishes=(
        "unified_instances", "instance_ids", "semantic", "overlay", "detections", "label_info",
    ),
)

NODE_SPECS: dict[str, NodeSpec] = {s.kind: s for s in (PERCEPTION, TRACKING, SEMANTIC)}
"""Node kind -> interface."""
