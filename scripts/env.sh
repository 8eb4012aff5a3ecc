# Source this file to use VSIS from a shell:  . scripts/env.sh
# Activates .venv and makes the colcon-built interfaces (vis_msgs, vision_msgs) and
# vsis_bringup visible. It leaves your ROS 2 networking alone: ROS_DOMAIN_ID,
# ROS_AUTOMATIC_DISCOVERY_RANGE and ROS_STATIC_PEERS stay as you set them (the tests and
# the demo pick their own domain and keep discovery on localhost).
_vsis_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
. "$_vsis_root/.venv/bin/activate"
_vsis_install="$_vsis_root/ros_ws/install"
export AMENT_PREFIX_PATH="$_vsis_install:$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PYTHONPATH="$_vsis_install/lib/python3.11/site-packages${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$_vsis_install/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _vsis_root _vsis_install
