"""Semantic unification: one class label per track.

* Online: per track, a running sum of class-probability vectors; the published label
  switches only when another class's mean probability leads it by ``margin`` for
  ``patience`` consecutive updates (hysteresis), except from the fallback class below.
* Offline: SISO 4.4.3 (argmax of the class scores summed over the video) or the
  majority vote of per-frame labels (MaskTrack R-CNN).

Both take an optional *fallback class* (the label map's ``object``,
:attr:`~vis_node.structures.label_map.LabelMap.fallback_class`): it says the model could
not name the object on a frame, which is no evidence against a class it named on
others. So the fallback never replaces a recognised label: a rider named ``person``
while upright stays a person while upside down in the air. It is a track's label only
until a recognised class leads one of its frames; from then on only the recognised
classes compete for it (offline: over the whole video; online: from that frame on).
Online, the hysteresis does not apply to leaving the fallback: it guards against
flicker between two names, and a track cannot flick back to the fallback; so a track
published as the fallback takes the best recognised class on the first frame that
names it, as a new track takes its first frame's leader.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vis_node.tracking.tracker_config import TrackerConfig

UNIFICATION_RULES = ("sum", "vote")
"""Offline rules: ``"sum"`` (SISO, the default) and ``"vote"`` (majority of per-frame
labels)."""


@dataclass(frozen=True)
class UnifierConfig:
    """Settings of :class:`OnlineUnifier` (the one place their defaults are written).

    Attributes
    ----------
    margin:
        Lead in mean class probability a challenger class needs over the published
        label before it can take over (not over the fallback class ``object``, which
        the first recognised class replaces at once).
    patience:
        Consecutive frames the challenger must lead by the margin before the published
        label switches (again not from the fallback class).
    max_idle:
        Frames a track may go unseen before its class history is forgotten; match the
        tracker's max_lost_age (a track the tracker forgot never comes back).
    max_tracks:
        Most tracks whose class history is kept; the least recently seen go first.
    """

    margin: float = 0.1
    patience: int = 3
    max_idle: int = TrackerConfig.max_lost_age
    max_tracks: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin must lie in [0, 1), got {self.margin}")
        for name, low in (("patience", 1), ("max_idle", 0), ("max_tracks", 1)):
            value = getattr(self, name)
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value}")


def _checked_fallback(fallback_class: int | None) -> int | None:
    """``fallback_class`` as an ``int``, or ``None``; raises ``ValueError`` below 1."""
    if fallback_class is None:
        return None
    if int(fallback_class) != fallback_class or fallback_class < 1:
        raise ValueError(f"fallback_class must be a class id >= 1 or None, got {fallback_class}")
    return int(fallback_class)


def _check_fallback_column(fallback_class: int | None, classes: int) -> None:
    """Raise ``ValueError`` when class probabilities of ``classes`` columns lack the
    fallback class's column (a label map of another model)."""
    if fallback_class is not None and fallback_class >= classes:
        raise ValueError(
            f"fallback class {fallback_class} is not among the {classes} classes of the "
            "probabilities; build the unifier from the loaded model's label map"
        )


@dataclass
class _TrackClasses:
    total: np.ndarray
    count: int
    label: int
    challenger: int
    streak: int
    last_update: int


class OnlineUnifier:
    """Per-track running class scores with a hysteresis on the published label.

    Parameters
    ----------
    config:
        Settings; default :class:`UnifierConfig` (``max_idle`` bounds the state by the
        live and remembered tracks).
    fallback_class:
        Class id that never replaces another published label and that the best
        recognised class replaces on the first frame a recognised class leads (the
        module docstring says why); ``None``: every class competes alike.
    **overrides:
        :class:`UnifierConfig` fields replacing those of ``config``.

    Raises
    ------
    ValueError
        A setting out of range; the message names it.
    TypeError
        An override that is not a setting.

    Examples
    --------
    >>> import numpy as np
    >>> unifier = OnlineUnifier()
    >>> labels, confidence = unifier.update(np.array([7]), np.array([[0.2, 0.8]]))
    >>> labels.tolist(), [round(c, 3) for c in confidence.tolist()]
    ([1], [0.8])
    """

    def __init__(
        self,
        config: UnifierConfig | None = None,
        fallback_class: int | None = None,
        **overrides: float,
    ) -> None:
        names = {f.name for f in dataclasses.fields(UnifierConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown unifier setting(s) {unknown}; settings: {sorted(names)}")
        self.config = dataclasses.replace(config or UnifierConfig(), **overrides)
        self.margin = float(self.config.margin)
        self.patience = int(self.config.patience)
        self.max_idle = int(self.config.max_idle)
        self.max_tracks = int(self.config.max_tracks)
        self.fallback_class = _checked_fallback(fallback_class)
        self.reset()

    def reset(self) -> None:
        """Forget every track."""
        self._tracks: OrderedDict[int, _TrackClasses] = OrderedDict()
        self._frame = -1

    def __len__(self) -> int:
        """Tracks remembered."""
        return len(self._tracks)

    def update(
        self, track_ids: np.ndarray, class_probs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add one frame's class probabilities and return the published labels.

        Parameters
        ----------
        track_ids:
            ``int64[N]`` track ids; 0 = untracked (labelled from its own probabilities,
            not remembered).
        class_probs:
            ``float32[N, C]`` class probabilities.

        Returns
        -------
        labels, confidence:
            ``int64[N]`` published class ids and ``float32[N]`` their mean probability
            over the track's frames so far.
        """
        track_ids = np.asarray(track_ids, dtype=np.int64)
        class_probs = np.asarray(class_probs, dtype=np.float64)
        if class_probs.ndim != 2 or class_probs.shape[0] != track_ids.shape[0]:
            raise ValueError(
                f"class_probs must be [N={track_ids.shape[0]}, C], got {class_probs.shape}"
            )
        _check_fallback_column(self.fallback_class, class_probs.shape[1])
        self._frame += 1
        labels = np.zeros(track_ids.shape[0], dtype=np.int64)
        confidence = np.zeros(track_ids.shape[0], dtype=np.float32)
        for k, (track_id, probs) in enumerate(zip(track_ids.tolist(), class_probs)):
            if track_id == 0:
                labels[k] = int(np.argmax(probs))
                confidence[k] = probs[labels[k]]
                continue
            state = self._update_track(track_id, probs)
            labels[k] = state.label
            confidence[k] = state.total[state.label] / state.count
        self._forget_idle()
        return labels, confidence

    def _forget_idle(self) -> None:
        """Drop tracks not updated for more than ``max_idle`` frames (oldest first)."""
        while self._tracks:
            oldest = next(iter(self._tracks.values()))
            if self._frame - oldest.last_update <= self.max_idle:
                return
            self._tracks.popitem(last=False)

    def _update_track(self, track_id: int, probs: np.ndarray) -> _TrackClasses:
        state = self._tracks.get(track_id)
        if state is None:
            leader = int(np.argmax(probs))
            state = _TrackClasses(probs.copy(), 1, leader, leader, 0, self._frame)
            self._tracks[track_id] = state
            while len(self._tracks) > self.max_tracks:
                self._tracks.popitem(last=False)
            return state
        if state.total.shape != probs.shape:
            raise ValueError(
                f"track {track_id} had {state.total.shape[0]} classes, now {probs.shape[0]}"
            )
        self._tracks.move_to_end(track_id)
        state.last_update = self._frame
        state.total += probs
        state.count += 1
        mean = state.total / state.count
        if state.label == self.fallback_class:
            if int(np.argmax(probs)) != self.fallback_class:  # the first frame naming it
                state.label = state.challenger = int(np.argmax(self._recognised(mean)))
            return state
        leader = int(np.argmax(self._recognised(mean)))
        if leader != state.label and mean[leader] - mean[state.label] >= self.margin:
            state.streak = state.streak + 1 if leader == state.challenger else 1
            state.challenger = leader
            if state.streak >= self.patience:
                state.label = leader
                state.streak = 0
        else:
            state.challenger = state.label
            state.streak = 0
        return state

    def _recognised(self, mean: np.ndarray) -> np.ndarray:
        """``mean`` with the fallback class out of the running (all of it without one)."""
        if self.fallback_class is None:
            return mean
        contenders = mean.copy()
        contenders[self.fallback_class] = -np.inf
        return contenders


def unify_offline(
    frames: Iterable[tuple[np.ndarray, np.ndarray]],
    rule: str = UNIFICATION_RULES[0],
    fallback_class: int | None = None,
) -> dict[int, tuple[int, float]]:
    """One label per track over a whole video.

    Parameters
    ----------
    frames:
        Per frame ``(track_ids int64[N], class_probs float32[N, C])``; id 0 is ignored.
    rule:
        ``"sum"``: argmax of the class probabilities summed over the video (SISO
        4.4.3). ``"vote"``: the most frequent per-frame argmax label (MaskTrack R-CNN);
        ties go to the class with the larger summed probability.
    fallback_class:
        Class id that is a track's label only when no other class led any of its
        frames (the module docstring says why); ``None``: every class competes alike.

    Returns
    -------
    dict
        Track id -> ``(label, confidence)``, the confidence being the mean over the
        track's frames of the chosen class's probability.
    """
    if rule not in UNIFICATION_RULES:
        raise ValueError(f"rule must be one of {UNIFICATION_RULES}, got {rule!r}")
    fallback_class = _checked_fallback(fallback_class)
    totals: dict[int, np.ndarray] = {}
    votes: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for track_ids, class_probs in frames:
        class_probs = np.asarray(class_probs, dtype=np.float64)
        for track_id, probs in zip(np.asarray(track_ids, dtype=np.int64).tolist(), class_probs):
            if track_id == 0:
                continue
            if track_id not in totals:
                totals[track_id] = np.zeros_like(probs)
                votes[track_id] = np.zeros_like(probs)
                counts[track_id] = 0
                _check_fallback_column(fallback_class, probs.shape[0])
            totals[track_id] += probs
            votes[track_id][int(np.argmax(probs))] += 1
            counts[track_id] += 1
    result: dict[int, tuple[int, float]] = {}
    for track_id, total in totals.items():
        tally = votes[track_id]
        if fallback_class is not None:
            recognised = np.delete(np.arange(total.shape[0]), fallback_class)
            if tally[recognised].any():
                total = total.copy()
                total[fallback_class] = -np.inf
                tally = tally.copy()
                tally[fallback_class] = 0
        if rule == "sum":
            label = int(np.argmax(total))
        else:
            tied = np.flatnonzero(tally == tally.max())
            label = int(tied[np.argmax(total[tied])])
        result[track_id] = (label, float(totals[track_id][label] / counts[track_id]))
    return result
