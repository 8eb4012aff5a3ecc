"""The three VSIS nodes composed in one process and one executor.

Same nodes, parameters (one params YAML may hold all three sections) and topics as
the three-process graph; messages still go through the RMW (rclpy has no
intra-process transport), but start-up and memory are shared. A multi-threaded
executor lets the stages work on different frames at the same time.

Run: ``vsis ros pipeline --params launch/config/perception.yaml ...`` or
``ros2 launch vsis_bringup vsis_composed.launch.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

from vis_node.ros.base_node import VsisNode, autostart, init_ros
from vis_node.ros.spinning import spin_until_stopped
from vis_node.ros.perception_node import PerceptionNode
from vis_node.ros.semantic_node import SemanticNode
from vis_node.ros.tracking_node import TrackingNode

NODE_CLASSES: dict[str, type[VsisNode]] = {
    "perception": PerceptionNode,
    "tracking": TrackingNode,
    "semantic": SemanticNode,
}
"""Node kind -> class, in pipeline order."""


def compose(
    *,
    context: Any = None,
    cli_args: Sequence[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[VsisNode]:
    """Create the perception, tracking and semantic nodes (unconfigured).

    Parameters
    ----------
    context:
        rclpy context (default: the global one).
    cli_args:
        ROS arguments applied to every node (``--ros-args -r image:=/cam ...``).
    overrides:
        Node kind -> parameter name -> value, applied over YAML files and defaults.

    Returns
    -------
    list[VsisNode]
        ``[perception, tracking, semantic]``.
    """
    nodes: list[VsisNode] = []
    for kind, node_class in NODE_CLASSES.items():
        values = (overrides or {}).get(kind, {})
        nodes.append(
            node_class(
                context=context,
                cli_args=list(cli_args) if cli_args else None,
                parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
            )
        )
    return nodes


def start(nodes: Sequence[VsisNode]) -> bool:
    """Configure and activate every node whose ``autostart`` is set; ``True`` if all did."""
    ok = True
    for node in nodes:
        if node.get_parameter("autostart").value:
            ok = autostart(node) and ok
    return ok


def stop(nodes: Sequence[VsisNode]) -> None:
    """Deactivate the active nodes and destroy all of them."""
    for node in nodes:
        if node.active:
            node.trigger_deactivate()
        node.destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Run the composed pipeline until Ctrl-C or SIGTERM (entry point of ``vsis_pipeline``)."""
    init_ros(args)
    nodes = compose()
    executor = MultiThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    if not start(nodes):
        nodes[0].get_logger().error("a node failed to start; the others keep running")
    try:
        spin_until_stopped(executor)
    finally:
        stop(nodes)
        executor.shutdown()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
