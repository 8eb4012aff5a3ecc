"""The one camera subscription of a node, chosen by its ``image_transport`` parameter.

A camera driver with image_transport plugins publishes ``image`` and
``image/compressed`` at once; subscribing to both would process every frame twice,
so each node subscribes to exactly one of them.
"""

from __future__ import annotations

from typing import Any

from sensor_msgs.msg import CompressedImage, Image

from vis_node.ros.params import TRANSPORT_TOPICS

TRANSPORT_TYPES: dict[str, type] = {"raw": Image, "compressed": CompressedImage}
"""``image_transport`` value -> message type of its topic."""


def image_subscription(transport: str) -> tuple[Any, str]:
    """Message type and relative topic name of the ``transport`` camera subscription.

    Raises
    ------
    ValueError
        A transport other than ``raw`` or ``compressed``.
    """
    if transport not in TRANSPORT_TYPES:
        raise ValueError(
            f"image_transport={transport!r}: choose one of {', '.join(TRANSPORT_TYPES)}"
        )
    return TRANSPORT_TYPES[transport], TRANSPORT_TOPICS[transport]


def image_topic(msg: Image | CompressedImage) -> str:
    """Relative topic name of a camera message's transport: ``image`` for an ``Image``,
    ``image/compressed`` for a ``CompressedImage``."""
    return TRANSPORT_TOPICS["raw" if isinstance(msg, Image) else "compressed"]
