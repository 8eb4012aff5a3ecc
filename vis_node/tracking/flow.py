"""Dense optical flow on downscaled grey frames, and mask warping by remapping.

Convention: ``flow = estimator(source, target)`` is ``float32[H, W, 2]`` (``dx, dy`` in
full-resolution pixels) such that ``source[y, x]`` matches
``target[y + dy, x + dx]``. To carry masks of the previous frame into the current one,
call ``estimator(current, previous)`` and :func:`warp_masks` (backward warping).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from vis_node.structures.frames import same_pixels, snapshot

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class FlowEstimator(Protocol):
    """Anything that maps two RGB frames to a dense flow field."""

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target``.

        Parameters
        ----------
        source, target:
            ``uint8[H, W, 3]`` RGB frames of equal size.

        Returns
        -------
        numpy.ndarray
            ``float32[H, W, 2]`` displacement in pixels.
        """
        ...


class _DownscaledFlow(ABC):
    """Shared downscale -> grey -> flow -> upscale logic.

    The grey, downscaled versions of the last three frames converted are kept (looked
    up like :class:`LastPairFlow`'s frames), so a video's frame is converted once
    although it is the source of one flow and the target of the next (three, as the
    first pair is converted newest first).
    """

    def __init__(self, max_side: int) -> None:
        if int(max_side) != max_side or max_side < 16:
            raise ValueError(f"max_side must be an integer >= 16, got {max_side}")
        self.max_side = int(max_side)
        self._greys: list[tuple[np.ndarray, np.ndarray]] = []

    def _grey(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"frames must be uint8[H, W, 3] RGB, got {image.dtype}{list(image.shape)}"
            )
        for frame, grey in self._greys:
            if same_pixels(image, frame):
                return grey
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        height, width = grey.shape
        scale = self.max_side / max(height, width)
        if scale < 1.0:
            size = (max(8, round(width * scale)), max(8, round(height * scale)))
            # Area averaging is fast for exact halvings: halve while the result stays
            # at least twice the target, then average the rest.
            while grey.shape[1] >= 2 * size[0] and grey.shape[0] >= 2 * size[1]:
                grey = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        self._greys = [*self._greys[-2:], (snapshot(image), grey)]
        return grey

    @abstractmethod
    def _compute(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow ``float32[h, w, 2]`` between two grey ``uint8[h, w]`` frames."""

    def reduced(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` at the reduced resolution it is computed at.

        Parameters
        ----------
        source, target:
            ``uint8[H, W, 3]`` RGB frames of equal size.

        Returns
        -------
        numpy.ndarray
            ``float32[h, w, 2]`` displacement in pixels of the ``h x w`` grid (the
            frames downscaled so that their longer side is at most ``max_side``).
        """
        if np.shape(source) != np.shape(target):
            raise ValueError(f"frames differ in size: {np.shape(source)} vs {np.shape(target)}")
        return self._compute(self._grey(source), self._grey(target))

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` (see :class:`FlowEstimator`)."""
        return upscale_flow(self.reduced(source, target), np.shape(source)[:2])


class DISFlow(_DownscaledFlow):
    """OpenCV DIS optical flow (Kroeger et al. 2016) on downscaled grey frames.

    Parameters
    ----------
    max_side:
        Frames whose longer side exceeds this many pixels are downscaled to it.
    preset:
        ``"ultrafast"`` (default), ``"fast"`` or ``"medium"``.
    finest_scale:
        Finest pyramid level DIS refines to (0 = full resolution of the downscaled
        frame); ``None`` keeps the preset's (2 for ultrafast). On synthetic 320 x 240
        videos the default 1 halves the warped masks with IoU below 0.7 (26 instead of
        55 of 343) for about 1.7 ms more per frame.

    Examples
    --------
    >>> flow = DISFlow()(frame_t, frame_t_minus_1)  # doctest: +SKIP
    """

    def __init__(
        self, max_side: int = 320, preset: str = "ultrafast", finest_scale: int | None = 1
    ) -> None:
        super().__init__(max_side)
        if preset not in _DIS_PRESETS:
            raise ValueError(f"preset must be one of {sorted(_DIS_PRESETS)}, got {preset!r}")
        if finest_scale is not None and (int(finest_scale) != finest_scale or finest_scale < 0):
            raise ValueError(f"finest_scale must be an integer >= 0 or None, got {finest_scale}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow.create(_DIS_PRESETS[preset])
        if finest_scale is not None:
            self._dis.setFinestScale(int(finest_scale))

    def _compute(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self._dis.calc(source, target, None)


class FarnebackFlow(_DownscaledFlow):
    """OpenCV Farneback optical flow on downscaled grey frames.

    Parameters
    ----------
    max_side:
        Frames whose longer side exceeds this many pixels are downscaled to it.
    levels, window:
        Pyramid levels and averaging window size (pixels at the reduced scale).
    """

    def __init__(self, max_side: int = 320, levels: int = 3, window: int = 15) -> None:
        super().__init__(max_side)
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if window < 3:
            raise ValueError(f"window must be >= 3, got {window}")
        self.levels = int(levels)
        self.window = int(window)

    def _compute(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(
            source, target, None, 0.5, self.levels, self.window, 3, 5, 1.2, 0
        )


def no_flow() -> None:
    """The ``none`` entry of :data:`vis_node.registry.FLOWS`: no estimator.

    The tracker then neither propagates masks nor coasts (every track goes to the
    association stage with its last box).
    """
    return None


def upscale_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow field resampled (bilinearly) to ``size``, its vectors scaled to match.

    Parameters
    ----------
    flow:
        ``float32[h, w, 2]`` displacement in pixels of its own grid.
    size:
        ``(H, W)`` of the frames.

    Returns
    -------
    numpy.ndarray
        ``float32[H, W, 2]`` displacement in pixels of the ``H x W`` frames (``flow``
        itself when it already has that size).
    """
    height, width = size
    if flow.shape[:2] == (height, width):
        return flow
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / flow.shape[1]
    out[..., 1] *= height / flow.shape[0]
    return out


def reduced_flow(estimator: FlowEstimator, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow from ``source`` to ``target`` at the estimator's own resolution.

    Parameters
    ----------
    estimator:
        A :class:`FlowEstimator`; one with a ``reduced`` method (:class:`DISFlow`,
        :class:`FarnebackFlow`, :class:`LastPairFlow`) returns its flow before the
        upscale to frame size, any other its full-resolution flow.
    source, target:
        ``uint8[H, W, 3]`` RGB frames of equal size.

    Returns
    -------
    numpy.ndarray
        ``float32[h, w, 2]`` displacement in pixels of its ``h x w`` grid (``h, w <= H,
        W``); the grid's scale is ``w / W`` across and ``h / H`` down.
    """
    reduce = getattr(estimator, "reduced", None)
    return reduce(source, target) if callable(reduce) else estimator(source, target)


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Masks resampled to ``size`` by nearest neighbour.

    Parameters
    ----------
    masks:
        ``bool[N, H, W]``.
    size:
        ``(h, w)`` of the output.

    Returns
    -------
    numpy.ndarray
        ``bool[N, h, w]``; ``masks`` itself when it already has that size.
    """
    masks = np.asarray(masks, dtype=bool)
    height, width = size
    if masks.shape[1:] == (height, width):
        return masks
    # Sample the pixel each output pixel falls on (as OpenCV's nearest neighbour).
    rows = np.minimum(
        (np.arange(height) * (masks.shape[1] / height)).astype(np.intp), masks.shape[1] - 1
    )
    cols = np.minimum(
        (np.arange(width) * (masks.shape[2] / width)).astype(np.intp), masks.shape[2] - 1
    )
    return masks[:, rows][:, :, cols]


def upscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One mask resampled to ``size`` with smooth edges (bilinear, cut at one half).

    Parameters
    ----------
    mask:
        ``bool[h, w]``.
    size:
        ``(H, W)`` of the output.

    Returns
    -------
    numpy.ndarray
        ``bool[H, W]``.
    """
    height, width = size
    if mask.shape == (height, width):
        return np.array(mask, dtype=bool)
    grey = cv2.resize(
        np.asarray(mask, dtype=np.uint8) * np.uint8(255),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    return grey >= 128


def _per_bit_plane(
    masks: np.ndarray, size: tuple[int, int], sample: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply a nearest-neighbour resampling ``sample`` (``uint8[H, W]`` to
    ``uint8[h, w]``) to ``bool[N, H, W]`` masks packed eight to a byte; ``bool[N, h, w]``."""
    n = masks.shape[0]
    out = np.zeros((n, *size), dtype=bool)
    bits = np.arange(8, dtype=np.uint8)
    for start in range(0, n, 8):
        chunk = masks[start : start + 8]
        packed = np.zeros(masks.shape[1:], dtype=np.uint8)
        for bit, mask in enumerate(chunk):
            packed |= mask.view(np.uint8) << np.uint8(bit)
        sampled = np.asarray(sample(packed), dtype=np.uint8)
        out[start : start + len(chunk)] = (
            (sampled[None] >> bits[: len(chunk), None, None]) & 1
        ).astype(bool)
    return out


def warp_masks(masks: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp masks with a dense flow field (nearest-neighbour remapping).

    Parameters
    ----------
    masks:
        ``bool[N, H, W]`` masks in the *target* frame of ``flow``.
    flow:
        ``float32[H, W, 2]`` from :func:`FlowEstimator` called as ``(current, previous)``
        when ``masks`` belong to the previous frame.

    Returns
    -------
    numpy.ndarray
        ``bool[N, H, W]``: ``out[k, y, x] = masks[k, y + dy, x + dx]``; samples outside
        the image are ``False``.
    """
    masks = np.asarray(masks, dtype=bool)
    flow = np.asarray(flow, dtype=np.float32)
    if masks.ndim != 3 or flow.shape != (*masks.shape[1:], 2):
        raise ValueError(
            f"need masks bool[N, H, W] and flow float32[H, W, 2]; got {masks.shape} "
            f"and {flow.shape}"
        )
    n, height, width = masks.shape
    if n == 0:
        return np.zeros_like(masks)
    grid_x, grid_y = pixel_grid(height, width)
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    return _per_bit_plane(
        masks,
        (height, width),
        lambda packed: cv2.remap(
            packed, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        ),
    )


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``float32[H, W]`` pixel x and y coordinates (cached per size)."""
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    grid_x.flags.writeable = False
    grid_y.flags.writeable = False
    return grid_x, grid_y


class LastPairFlow:
    """A flow estimator that returns its last result again for the same pair of frames.

    The online pipeline's motion gate and tracker both need the flow from frame ``t``
    to ``t - 1``; giving both one ``LastPairFlow`` computes it once per frame (at the
    estimator's reduced resolution: :meth:`reduced` returns it as computed, calling the
    instance upscales it to frame size). Frames are compared by
    :func:`~vis_node.structures.frames.same_pixels`: by identity for frozen frames (what
    readers and decoders hand out), else by content, so a reused or overwritten buffer
    never returns a stale flow.

    Parameters
    ----------
    flow:
        The estimator doing the work.
    """

    def __init__(self, flow: FlowEstimator) -> None:
        self.flow = flow
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def reduced(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` at the estimator's resolution (see
        :func:`reduced_flow`)."""
        if self._last is not None:
            last_source, last_target, last_flow = self._last
            if same_pixels(source, last_source) and same_pixels(target, last_target):
                return last_flow
        flow = reduced_flow(self.flow, source, target)
        self._last = (snapshot(source), snapshot(target), flow)
        return flow

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` (see :class:`FlowEstimator`)."""
        return upscale_flow(self.reduced(source, target), np.shape(source)[:2])

