"""The ROS 2 layer of VSIS: message conversion, QoS presets and (later) the nodes.

Everything here imports rclpy and the colcon-built ``vis_msgs``; the rest of
``vis_node`` never imports this package. Source ``scripts/env.sh`` (or the colcon
``install/setup.bash``) first so ``vis_msgs`` is importable.
"""
