"""VSIS as three processes: perception -> tracking -> semantic.

    ros2 launch vsis_bringup vsis.launch.py image:=/camera/image_raw
    ros2 launch vsis_bringup vsis.launch.py namespace:=robot1 model:=davis runtime:=torch \
        device:=cuda params_file:=my.yaml use_sim_time:=true

Parameters come from launch/config/<node>.yaml, found in the installed vis_node
package (then ``params_file``, then the model / runtime / device / use_sim_time
arguments). Arguments, remappings and topic names come from vis_node.ros.graph, which ``vsis ros up`` uses too: both start the
same graph under the same names (``ros2 launch -s`` lists the arguments).
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
from vis_node.ros.params import NODE_SPECS


def _nodes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in GRAPH_ARGUMENTS}
    extra = [values["params_file"]] if values["params_file"] else []
    return [
        Node(
            package="vsis_bringup",
            executable=NODE_SPECS[kind].executable,
            name=NODE_SPECS[kind].node_name,
            namespace=values["namespace"],
            output="screen",
            parameters=[
                str(default_params_file(kind)), *extra, parameter_overrides(values)
            ],
            remappings=remappings(values["image"]),
        )
        for kind in NODE_KINDS
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
