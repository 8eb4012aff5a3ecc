"""Plausibility of a flow-propagated ("coasted") mask.

A track whose detection is missing keeps its mask carried by optical flow while that
mask stays plausible. Plausible means: the flow inside it is forward-backward
consistent (where an object disappears or is occluded, the flow has no true
correspondence and the round trip fails), its area does not jump from one frame to
the next (a diverging or collapsing flow), and no detection of another object covers
it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vis_node.tracking.flow import pixel_grid


def forward_backward_error(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Round-trip error of the flow at each pixel of the current frame.

    Parameters
    ----------
    backward:
        ``float32[H, W, 2]`` flow current -> previous (``estimator(current, previous)``).
    forward:
        ``float32[H, W, 2]`` flow previous -> current (``estimator(previous, current)``).

    Returns
    -------
    numpy.ndarray
        ``float32[H, W]``: ``|b(x) + f(x + b(x))|`` in pixels; 0 for a consistent flow.
    """
    height, width = backward.shape[:2]
    grid_x, grid_y = pixel_grid(height, width)
    there = cv2.remap(
        np.ascontiguousarray(forward, dtype=np.float32),
        grid_x + backward[..., 0],
        grid_y + backward[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.linalg.norm(backward + there, axis=2).astype(np.float32)


@dataclass(frozen=True)
class CoastCheck:
    """Verdict on one coasted mask (see :func:`check_coasted`).

    Attributes
    ----------
    plausible:
        All tests passed.
    consistent_share:
        Share of the mask's pixels whose round-trip error is within tolerance.
    area_ratio:
        Coasted area over the reference area.
    covered_share:
        Share of the mask covered by detections of other tracks.
    """

    plausible: bool
    consistent_share: float
    area_ratio: float
    covered_share: float


def check_coasted(
    mask: np.ndarray,
    fb_error: np.ndarray,
    reference_area: float,
    covered: np.ndarray,
    *,
    fb_tolerance: float,
    min_consistent: float,
    max_area_ratio: float,
    max_covered: float,
) -> CoastCheck:
    """Whether a coasted mask is still plausible.

    Parameters
    ----------
    mask:
        ``bool[H, W]`` the coasted mask.
    fb_error:
        ``float32[H, W]`` from :func:`forward_backward_error`, in pixels.
    reference_area:
        Area in pixels of the mask it was carried from (the previous frame's).
    covered:
        ``bool[H, W]`` pixels of this frame's matched detections.
    fb_tolerance:
        Round-trip error in pixels still counted consistent (scale it with the
        object's size).
    min_consistent:
        Least share of consistent pixels.
    max_area_ratio:
        Most the area may shrink or grow by (a factor, both ways).
    max_covered:
        Most share of the mask other detections may cover.
    """
    area = int(mask.sum())
    if area == 0 or reference_area <= 0:
        return CoastCheck(False, 0.0, 0.0, 0.0)
    consistent = float(np.mean(fb_error[mask] <= fb_tolerance))
    ratio = area / reference_area
    covered_share = float(np.count_nonzero(covered & mask)) / area
    plausible = (
        consistent >= min_consistent
        and 1.0 / max_area_ratio <= ratio <= max_area_ratio
        and covered_share <= max_covered
    )
    return CoastCheck(plausible, consistent, ratio, covered_share)
