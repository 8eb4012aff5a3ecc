"""VSIS composed: the three nodes in one process and one executor.

    ros2 launch vsis_bringup vsis_composed.launch.py image:=/camera/image_raw

Same parameters (config/*.yaml beside this file, one section per node) and topics as
vsis.launch.py; without ``ros2 launch``: ``vsis ros pipeline``.
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
                executable="vsis_pipeline",
                output="screen",
                parameters=[
                    os.path.join(CONFIG_DIR, "perception.yaml"),
                    os.path.join(CONFIG_DIR, "tracking.yaml"),
                    os.path.join(CONFIG_DIR, "semantic.yaml"),
                ],
                remappings=[
                    ("image", image),
                    ("image/compressed", [image, "/compressed"]),
                    ("instances", "/vsis/instances"),
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
