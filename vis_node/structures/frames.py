"""The frame record every reader yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded video frame.

    Attributes
    ----------
    image:
        ``uint8[H, W, 3]`` RGB pixels.
    stamp_ns:
        Capture time in nanoseconds (from the bag / video clock, or ``index / fps``
        for sources without timestamps).
    index:
        0-based position of the frame in its sequence.
    name:
        Frame stem used for output files (``"00000"`` for ``00000.jpg``).
    sequence:
        Name of the sequence (video stem, folder name or DAVIS sequence).
    """

    image: np.ndarray
    stamp_ns: int
    index: int
    name: str
    sequence: str

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])
