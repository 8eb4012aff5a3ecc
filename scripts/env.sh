# Source this file to use VSIS from a shell:  . scripts/env.sh
# Activates .venv, makes the colcon-built vis_msgs importable, and keeps ROS 2 DDS
# discovery on this machine (set ROS_DOMAIN_ID yourself to share a graph with others).
_vsis_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
. "$_vsis_root/.venv/bin/activate"
_vsis_install="$_vsis_root/ros_ws/install"
export AMENT_PREFIX_PATH="$_vsis_install:$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PYTHONPATH="$_vsis_install/lib/python3.11/site-packages${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$_vsis_install/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_LOCALHOST_ONLY="${ROS_LOCALHOST_ONLY:-1}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
unset _vsis_root _vsis_install
