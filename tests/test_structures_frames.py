"""Frozen frames: recognised by identity, kept without copies, never stale."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.structures.frames import freeze, is_frozen, same_pixels, snapshot
from vis_node.tracking.flow import LastPairFlow


def test_a_frozen_frame_is_kept_and_matched_by_identity() -> None:
    frame = freeze(np.full((2, 4, 3), 9, np.uint8))
    assert is_frozen(frame) and snapshot(frame) is frame
    assert same_pixels(frame, snapshot(frame))
    with pytest.raises(ValueError):
        frame[0, 0, 0] = 1
    assert not is_frozen(freeze(np.arange(24, dtype=np.uint8).reshape(2, 4, 3)))  # a view


def test_a_writeable_frame_is_copied_and_compared_by_content() -> None:
    frame = np.zeros((4, 6, 3), np.uint8)
    kept = snapshot(frame)
    assert kept is not frame and not is_frozen(frame)
    assert same_pixels(frame, kept)
    frame[3, 5, 2] = 1  # a pixel off the sparse sample
    assert not same_pixels(frame, kept)
    assert not same_pixels(frame[:, :5], kept)


def test_a_read_only_view_of_writeable_memory_is_not_frozen() -> None:
    owner = np.zeros((4, 6, 3), np.uint8)
    view = owner[:, :]
    view.flags.writeable = False
    assert not is_frozen(view)
    assert snapshot(view) is not view  # the owner may still change it
    immutable = np.frombuffer(bytes(72), np.uint8).reshape(4, 6, 3)
    assert is_frozen(immutable)  # bytes never change
    assert not is_frozen(np.frombuffer(bytearray(72), np.uint8))


def test_last_pair_flow_takes_frozen_frames_at_their_word_and_others_by_content() -> None:
    calls: list[int] = []

    def counting(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        calls.append(1)
        return np.full((*source.shape[:2], 2), float(source[0, 0, 0]), np.float32)

    shared = LastPairFlow(counting)
    a, b = freeze(np.zeros((4, 6, 3), np.uint8)), freeze(np.ones((4, 6, 3), np.uint8))
    first = shared.reduced(a, b)
    assert shared.reduced(a, b) is first and len(calls) == 1
    assert shared.reduced(a.copy(), b.copy()) is first  # equal content also matches
    mutable = np.full((4, 6, 3), 5, np.uint8)
    shared.reduced(mutable, b)
    mutable[0, 0, 0] = 7  # overwritten in place: a new pair
    assert shared.reduced(mutable, b)[0, 0, 0] == 7.0 and len(calls) == 3
