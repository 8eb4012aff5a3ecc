"""Semantic unification: online hysteresis and the offline SISO / vote rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vis_node.tracking.unification import OnlineUnifier, unify_offline


def test_hysteresis_switch_timing_hand_computed() -> None:
    # 4 frames of class 1 (0.8), then class 2 (0.9). After n frames of class 2 the mean
    # lead of class 2 is (0.8 n - 2.4) / (4 + n): 0.1 at n = 4, 0.178 at n = 5, so it
    # leads by the margin 0.15 from n = 5; with patience 3 the label switches at n = 7.
    unifier = OnlineUnifier(margin=0.15, patience=3)
    published = []
    for t in range(12):
        probs = [0.0, 0.8, 0.2] if t < 4 else [0.0, 0.1, 0.9]
        labels, confidence = unifier.update(np.array([5]), np.array([probs]))
        published.append(int(labels[0]))
    assert published == [1] * 10 + [2] * 2
    assert confidence[0] == pytest.approx((0.8 + 0.9 * 8) / 12)


def test_noisy_labels_end_with_one_label() -> None:
    rng = np.random.default_rng(7)
    unifier = OnlineUnifier()
    per_frame, published = [], []
    for _ in range(100):
        probs = rng.dirichlet(np.ones(5) * 0.5)
        if rng.random() < 0.6:
            probs = 0.5 * probs + 0.5 * np.eye(5)[3]
        per_frame.append(int(np.argmax(probs)))
        labels, _ = unifier.update(np.array([1]), probs[None])
        published.append(int(labels[0]))
    raw_changes = sum(a != b for a, b in itertools.pairwise(per_frame))
    assert len(set(per_frame)) == 5 and raw_changes == 53  # the raw labels really are noisy
    assert published == [3] * 100
    frames = [(np.array([1]), np.array([p])) for p in np.eye(5)[per_frame]]
    assert unify_offline(frames, "vote")[1][0] == 3


def test_untracked_instances_use_their_own_argmax() -> None:
    unifier = OnlineUnifier()
    labels, confidence = unifier.update(np.array([0, 0]), np.array([[0.3, 0.7], [0.6, 0.4]]))
    assert labels.tolist() == [1, 0]
    np.testing.assert_allclose(confidence, [0.7, 0.6])
    assert len(unifier) == 0


def test_online_memory_is_bounded() -> None:
    unifier = OnlineUnifier(max_tracks=3)
    for track_id in range(1, 11):
        unifier.update(np.array([track_id]), np.array([[0.2, 0.8]]))
    assert len(unifier) == 3


def test_state_is_bounded_by_live_and_remembered_tracks() -> None:
    # A 10,000-frame stream where 4 tracks are live at a time and a new id replaces the
    # oldest every 25 frames (400 ids in all): the state holds the live tracks plus
    # those seen within max_idle frames, not every id ever seen.
    unifier = OnlineUnifier(max_idle=30)
    sizes = []
    for frame in range(10_000):
        first = frame // 25
        ids = np.arange(first + 1, first + 5)
        unifier.update(ids, np.tile([[0.2, 0.8]], (4, 1)))
        sizes.append(len(unifier))
    assert max(sizes) == 6 and sizes[-1] == 5


def test_track_back_within_max_idle_keeps_its_label() -> None:
    unifier = OnlineUnifier(margin=0.1, patience=1, max_idle=2)
    for _ in range(3):
        unifier.update(np.array([7]), np.array([[0.0, 0.9, 0.1]]))
    for _ in range(2):
        unifier.update(np.array([8]), np.array([[0.0, 0.5, 0.5]]))
    labels, _ = unifier.update(np.array([7]), np.array([[0.0, 0.3, 0.7]]))
    assert labels.tolist() == [1]  # mean over 4 frames still favours class 1
    for _ in range(3):
        unifier.update(np.array([8]), np.array([[0.0, 0.5, 0.5]]))
    assert len(unifier) == 1  # track 7 was idle for 3 > max_idle frames
    labels, confidence = unifier.update(np.array([7]), np.array([[0.0, 0.3, 0.7]]))
    assert labels.tolist() == [2] and confidence[0] == pytest.approx(0.7)


def test_offline_sum_versus_vote() -> None:
    frames = [
        (np.array([4, 9]), np.array([[0.0, 0.45, 0.55], [0.0, 0.0, 1.0]])),
        (np.array([4, 0]), np.array([[0.0, 0.45, 0.55], [1.0, 0.0, 0.0]])),
        (np.array([4]), np.array([[0.0, 0.95, 0.05]])),
    ]
    by_sum = unify_offline(frames, "sum")
    by_vote = unify_offline(frames, "vote")
    assert by_sum[4] == (1, pytest.approx(1.85 / 3))
    assert by_vote[4] == (2, pytest.approx(1.15 / 3))
    assert set(by_sum) == {4, 9}  # id 0 is ignored
    with pytest.raises(ValueError, match="rule"):
        unify_offline(frames, "median")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"margin": 1.5}, "margin"), ({"patience": 0}, "patience"), ({"max_tracks": 0}, "max_tracks"),
     ({"max_idle": -1}, "max_idle")],
)
def test_unifier_validates(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        OnlineUnifier(**kwargs)


# Columns: background, object (the fallback), person, bird.
PERSON = [0.0, 0.2, 0.8, 0.0]
UNNAMED = [0.0, 0.9, 0.1, 0.0]  # the detector cannot name it (e.g. a rider upside down)


def _online_labels(unifier: OnlineUnifier, rows: list[list[float]]) -> list[int]:
    return [int(unifier.update(np.array([3]), np.array([row]))[0][0]) for row in rows]


def test_the_fallback_class_never_replaces_a_named_label() -> None:
    rows = [PERSON] * 5 + [UNNAMED] * 20
    assert _online_labels(OnlineUnifier(), rows)[-1] == 1  # without: "object" takes over
    published = _online_labels(OnlineUnifier(fallback_class=1), rows)
    assert published == [2] * 25
    # A named class may still replace a named class.
    bird = [0.0, 0.0, 0.1, 0.9]
    later = _online_labels(OnlineUnifier(fallback_class=1), rows + [bird] * 40)
    assert later[-1] == 3


def test_a_named_class_replaces_the_fallback_class_on_the_first_frame_naming_it() -> None:
    rows = [UNNAMED] * 3 + [PERSON] * 10
    # The first person frame names the track: the fallback leaves the contest and
    # neither the margin nor the patience delays leaving it (object's mean still leads).
    assert _online_labels(OnlineUnifier(fallback_class=1), rows) == [1] * 3 + [2] * 10
    # Without a fallback class, the hysteresis applies: person leads object's mean by
    # the margin 0.1 from the 6th person frame, for 3 frames.
    assert _online_labels(OnlineUnifier(), rows) == [1] * 10 + [2] * 3
    # The best named class wins, not the first frame's: bird, named on one frame, gives
    # way to person once person leads the named classes' means by the margin.
    bird = [0.0, 0.0, 0.1, 0.9]
    published = _online_labels(OnlineUnifier(fallback_class=1), [UNNAMED, bird] + [PERSON] * 6)
    assert published[:2] == [1, 3] and published[-1] == 2


def test_offline_fallback_class_only_when_nothing_was_named() -> None:
    frames = [(np.array([5, 6]), np.array([PERSON, UNNAMED]))]
    frames += [(np.array([5, 6]), np.array([UNNAMED, UNNAMED]))] * 4
    for rule in ("sum", "vote"):
        assert unify_offline(frames, rule)[5][0] == 1
        unified = unify_offline(frames, rule, fallback_class=1)
        assert unified[5] == (2, pytest.approx((0.8 + 4 * 0.1) / 5))
        assert unified[6] == (1, pytest.approx(0.9))  # never named: stays "object"


def test_a_fallback_class_outside_the_probabilities_is_refused() -> None:
    with pytest.raises(ValueError, match="fallback_class"):
        OnlineUnifier(fallback_class=0)
    with pytest.raises(ValueError, match="label map"):
        OnlineUnifier(fallback_class=4).update(np.array([1]), np.array([PERSON]))
    with pytest.raises(ValueError, match="label map"):
        unify_offline([(np.array([1]), np.array([PERSON]))], fallback_class=7)
