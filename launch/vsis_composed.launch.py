"""VSIS composed: the three nodes in one process and one executor.

    ros2 launch vsis_bringup vsis_composed.launch.py image:=/camera/image_raw

Same arguments, parameters (launch/config/*.yaml, found in the installed vis_node
package; one section per node) and topic names as vsis.launch.py (all from
vis_node.ros.graph); without ``ros2 launch``: ``vsis ros pipeline``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from vis_node.ros.graph import (
    GRAPH_ARGUMENTS,
    NODE_KINDS,
    default_params_file,
    parameter_overrides,
    remappings,
)


def _nodes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in GRAPH_ARGUMENTS}
    extra = [values["params_file"]] if values["params_file"] else []
    return [
        Node(
            package="vsis_bringup",
            executable="vsis_pipeline",
            namespace=values["namespace"],
            output="screen",
            parameters=[
                *(str(default_params_file(kind)) for kind in NODE_KINDS),
                *extra,
                parameter_overrides(values),
            ],
            remappings=remappings(values["image"]),
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                for a in GRAPH_ARGUMENTS
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
