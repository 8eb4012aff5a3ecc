"""The label set of a model: class names indexed by class id, and the model's name.

A label map belongs to a model: whoever loads the model builds the label map from it,
and every consumer takes the names from that label map, never from a list of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FALLBACK_CLASS = "object"
"""Name of the class a model gives a salient object it cannot name (the absence of a
recognised class, not a class of its own)."""


@dataclass(frozen=True)
class LabelMap:
    """Class names of a model, index = class id (0 = background), and the model's name.

    Attributes
    ----------
    names:
        ``C`` class names; ``names[i]`` names class id ``i``.
    model_name:
        Name of the model the classes belong to (e.g. ``"davis"``), for provenance.

    Raises
    ------
    ValueError
        Fewer than two names (background plus at least one class), a name that is not
        a non-empty string, or an empty model name.
    """

    names: tuple[str, ...]
    model_name: str

    def __init__(self, names: Sequence[str], model_name: str) -> None:
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "model_name", model_name)
        if len(self.names) < 2:
            raise ValueError(
                f"a label map needs 'background' and at least one class, got {list(self.names)}"
            )
        if not all(isinstance(n, str) and n for n in self.names):
            raise ValueError(f"every class name must be a non-empty string, got {list(self.names)}")
        if not isinstance(model_name, str) or not model_name:
            raise ValueError(f"the label map needs the model's name, got {model_name!r}")

    def __len__(self) -> int:
        """Number of classes ``C`` (background included)."""
        return len(self.names)

    @property
    def fallback_class(self) -> int | None:
        """Class id of :data:`FALLBACK_CLASS` when the map also has named classes.

        ``None`` for a map without it, or whose only class it is (a class-agnostic map,
        where it is the one label there is).
        """
        if FALLBACK_CLASS not in self.names[1:] or len(self.names) < 3:
            return None
        return self.names.index(FALLBACK_CLASS, 1)

    def to_dict(self) -> dict[str, Any]:
        """``{"model_name": str, "names": [str, ...]}`` (JSON / YAML friendly)."""
        return {"model_name": self.model_name, "names": list(self.names)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelMap:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            A missing ``names`` or ``model_name`` key, or invalid values.
        """
        missing = [key for key in ("names", "model_name") if key not in data]
        if missing:
            raise ValueError(f"label map dict lacks {', '.join(missing)}; got keys {sorted(data)}")
        return cls(list(data["names"]), data["model_name"])
