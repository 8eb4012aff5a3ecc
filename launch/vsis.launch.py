"""VSIS as three processes: perception -> tracking -> semantic.

    ros2 launch vsis_bringup vsis.launch.py image:=/camera/image_raw

Parameters come from config/<node>.yaml beside this file; the nodes' generic topic
names (image, instances, tracked_instances, ...) are remapped here. Without
``ros2 launch``: ``vsis ros up`` starts the same graph.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config")


def generate_launch_description():
    image = LaunchConfiguration("image")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "image", default_value="/camera/image_raw", description="camera image topic"
            ),
            Node(
                package="vsis_bringup",
                executable="perception_node",
                name="vsis_perception",
                output="screen",
                parameters=[os.path.join(CONFIG_DIR, "perception.yaml")],
                remappings=[
                    ("image", image),
                    ("image/compressed", [image, "/compressed"]),
                    ("instances", "/vsis/instances"),
                ],
            ),
            Node(
                package="vsis_bringup",
                executable="tracking_node",
                name="vsis_tracking",
                output="screen",
                parameters=[os.path.join(CONFIG_DIR, "tracking.yaml")],
                remappings=[
                    ("image", image),
                    ("image/compressed", [image, "/compressed"]),
                    ("instances", "/vsis/instances"),
                    ("tracked_instances", "/vsis/tracked_instances"),
                ],
            ),
            Node(
                package="vsis_bringup",
                executable="semantic_node",
                name="vsis_semantic",
                output="screen",
                parameters=[os.path.join(CONFIG_DIR, "semantic.yaml")],
                remappings=[
                    ("image", image),
                    ("tracked_instances", "/vsis/tracked_instances"),
                    ("unified_instances", "/vsis/unified_instances"),
                    ("instance_ids", "/vsis/instance_ids"),
                    ("semantic", "/vsis/semantic"),
                    ("label_map", "/vsis/label_map"),
                    ("overlay", "/vsis/overlay"),
                ],
            ),
        ]
    )
