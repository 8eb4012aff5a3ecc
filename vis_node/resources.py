"""Where the data shipped inside the ``vis_node`` package lives (models, ROS parameters).

The shipped models and the ROS nodes' default parameter files live in the repository's
top-level ``models/`` and ``launch/config/`` folders. The package reaches them through
two links, ``vis_node/models -> ../models`` and ``vis_node/ros/config ->
../../launch/config``, and ``pyproject.toml`` declares them as package data, so a
wheel carries real copies. They are therefore found the same way in an editable
install (the source tree, through the links), an installed wheel (site-packages) and a
colcon install (the launch files of ``vsis_bringup`` import ``vis_node`` and ask it).
Nothing here climbs out of the package.

Nothing in this module imports the rest of ``vis_node``: every layer may use it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = "vis_node"
"""The package whose data this module finds."""

MODELS_FOLDER = "models"
"""Folder of the shipped models inside the package (one sub-folder per model)."""

ROS_CONFIG_FOLDER = ("ros", "config")
"""Folder of the ROS nodes' default parameter files inside the package."""


def package_path(*parts: str) -> Path:
    """The file-system path of ``parts`` inside the installed ``vis_node`` package.

    The path is returned whether or not it exists; callers check what they need.

    Raises
    ------
    RuntimeError
        When ``vis_node`` is not installed as plain files (e.g. imported from a zip
        archive): models and parameter files must be real files for torch, ONNX Runtime
        and ROS to read them.
    """
    root = files(PACKAGE)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"vis_node is imported from {root!s}, not from a folder: install it as files "
            "(pip install, not a zip archive) so its models and parameter files can be read"
        )
    return root.joinpath(*parts)


def shipped_models_dir() -> Path:
    """Folder holding the shipped models (``vis_node/models``, a link to ``models/``)."""
    return package_path(MODELS_FOLDER)


def ros_config_dir() -> Path:
    """Folder holding the ROS nodes' default parameter files (``vis_node/ros/config``, a
    link to ``launch/config/``)."""
    return package_path(*ROS_CONFIG_FOLDER)
