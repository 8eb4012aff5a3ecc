"""Runtime filters on the instances of one frame: score, classes, count, mask area.

Used by ``vsis run`` (``--score-threshold``, ``--classes``, ``--max-instances``,
``--min-mask-area``) and by the perception node (parameters of the same names), so
both keep the same instances. Class names come from the loaded model's label map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vis_node.structures.label_map import LabelMap
from vis_node.structures.instances import Instances


@dataclass(frozen=True)
class InstanceFilter:
    """Which instances of a frame to keep; the defaults keep all.

    Attributes
    ----------
    score_threshold:
        Smallest saliency score in ``[0, 1]`` an instance needs.
    class_allow:
        Class names to keep (names of the model's label map); empty keeps every class.
        An instance's class is its most probable non-background class.
    max_instances:
        Most instances kept, the most salient first; 0 = no limit.
    min_mask_area:
        Fewest mask pixels an instance needs.
    """

    score_threshold: float = 0.0
    class_allow: tuple[str, ...] = ()
    max_instances: int = 0
    min_mask_area: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_allow", tuple(self.class_allow))
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.max_instances < 0 or self.min_mask_area < 0:
            raise ValueError(
                f"max_instances ({self.max_instances}) and min_mask_area "
                f"({self.min_mask_area}) must be >= 0 (0 = no limit)"
            )

    @property
    def keeps_all(self) -> bool:
        """Whether this filter keeps every instance (all settings at their defaults)."""
        return self == InstanceFilter()

    def allowed_ids(self, label_map: LabelMap) -> np.ndarray:
        """``int64[K]`` class ids of :attr:`class_allow` in ``label_map``.

        Raises
        ------
        ValueError
            A name the label map does not have; the message lists the model's names.
        """
        unknown = [n for n in self.class_allow if n not in label_map.names]
        if unknown:
            raise ValueError(
                f"classes {unknown} are not in the label map of model "
                f"'{label_map.model_name}'; choose from {', '.join(label_map.names[1:])}"
            )
        return np.array([label_map.names.index(n) for n in self.class_allow], dtype=np.int64)

    def __call__(self, instances: Instances, label_map: LabelMap) -> Instances:
        """The instances this filter keeps, most salient first when a limit applies.

        Parameters
        ----------
        instances:
            ``N`` instances whose ``class_probs`` has ``len(label_map)`` columns.
        label_map:
            The model's label map (names of :attr:`class_allow`).

        Raises
        ------
        ValueError
            A class name missing from ``label_map``, or class probabilities whose
            width differs from the label map.
        """
        if self.keeps_all or len(instances) == 0:
            return instances
        if instances.class_probs.shape[1] != len(label_map):
            raise ValueError(
                f"instances have {instances.class_probs.shape[1]} class columns but the "
                f"label map of '{label_map.model_name}' has {len(label_map)} classes"
            )
        keep = instances.saliency >= self.score_threshold
        if self.class_allow:
            classes = instances.class_probs[:, 1:].argmax(axis=1) + 1
            keep &= np.isin(classes, self.allowed_ids(label_map))
        if self.min_mask_area:
            keep &= instances.masks.reshape(len(instances), -1).sum(axis=1) >= self.min_mask_area
        index = np.flatnonzero(keep)
        if self.max_instances:
            order = np.argsort(-instances.saliency[index], kind="stable")
            index = np.sort(index[order[: self.max_instances]])
        return instances.select(index)



class FilteredPredictor:
    """A predictor whose instances pass through an :class:`InstanceFilter`.

    Parameters
    ----------
    predictor:
        ``(uint8[H, W, 3] RGB) -> Instances`` with a ``class_names`` attribute.
    instance_filter:
        What to keep.
    label_map:
        The predictor's label map (names for ``class_allow``).

    Raises
    ------
    ValueError
        A ``class_allow`` name the label map does not have.
    """

    def __init__(
        self, predictor: Callable[[np.ndarray], Instances], instance_filter: InstanceFilter,
        label_map: LabelMap,
    ) -> None:
        instance_filter.allowed_ids(label_map)
        self.predictor = predictor
        self.instance_filter = instance_filter
        self.label_map = label_map

    @property
    def class_names(self) -> tuple[str, ...]:
        """The wrapped predictor's label map, index = class id."""
        return self.label_map.names

    def __call__(self, image: np.ndarray) -> Instances:
        """The wrapped predictor's instances of ``image`` that the filter keeps."""
        return self.instance_filter(self.predictor(image), self.label_map)


def filter_predictor(
    predictor: Any, instance_filter: InstanceFilter, model: str
) -> Any:
    """``predictor`` behind ``instance_filter`` (``predictor`` itself when it keeps all).

    Parameters
    ----------
    predictor:
        ``(uint8[H, W, 3] RGB) -> Instances`` with a ``class_names`` attribute.
    instance_filter:
        What to keep.
    model:
        The model's name or path (named in the label map).

    Raises
    ------
    ValueError
        A ``class_allow`` name the model's label map does not have.
    """
    from vis_node.perception.checkpoint import model_name

    if instance_filter.keeps_all:
        return predictor
    label_map = LabelMap(predictor.class_names, model_name(model))
    return FilteredPredictor(predictor, instance_filter, label_map)
