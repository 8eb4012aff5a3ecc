"""Settings dataclasses as command-line flags and as ROS parameters, one default each.

A settings dataclass (:class:`~vis_node.tracking.tracker_config.TrackerConfig`,
:class:`~vis_node.tracking.fusion.FusionConfig`,
:class:`~vis_node.tracking.unification.UnifierConfig`,
:class:`~vis_node.tracking.offline_config.OfflineConfig`) writes each default once, as its
field's default, and documents each field in the numpydoc ``Attributes`` section of its
docstring. :func:`settings_of` reads both; :func:`add_flags` turns them into
``--field-name`` flags (``vsis run``, ``vsis track``) and
:func:`vis_node.ros.params.config_params` into node parameters, so neither repeats a
default or a help text. A field may name its allowed values in
``field(metadata={"choices": (...)})``.

Nothing here imports the rest of ``vis_node``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

SettingValue = bool | int | float | str
"""Types a setting may have (a flag's and a ROS parameter's scalar types)."""

C = TypeVar("C")

_SECTION = re.compile(r"^(\w[\w ]*)\n-+$", re.M)
_ITEM = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::.*)?$")
_METAVARS = {int: "N", float: "X"}
"""Value placeholders of numeric flags in ``--help`` (``str`` flags list their choices)."""
_ROLE = re.compile(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def _plain(text: str) -> str:
    """``text`` without reStructuredText markup (roles -> last name, literals -> text)."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))


@dataclass(frozen=True)
class Setting:
    """One field of a settings dataclass.

    Attributes
    ----------
    name:
        Field name (the ROS parameter name; the flag is ``--name`` with ``-`` for ``_``).
    kind:
        ``bool``, ``int``, ``float`` or ``str``.
    default:
        The field's default.
    help:
        The field's text from the ``Attributes`` section, on one line.
    choices:
        Allowed values of a ``str`` field (empty = any).
    """

    name: str
    kind: type
    default: SettingValue
    help: str
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The command-line flag, ``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its text in the numpydoc ``Attributes`` section of ``cls``.

    An entry ``a, b:`` documents both fields; the text is joined onto one line, without
    reStructuredText markup.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    sections = list(_SECTION.finditer(doc))
    docs: dict[str, str] = {}
    for k, section in enumerate(sections):
        if section.group(1).strip() != "Attributes":
            continue
        end = sections[k + 1].start() if k + 1 < len(sections) else len(doc)
        names: list[str] = []
        for line in doc[section.end():end].splitlines():
            if line and not line.startswith(" ") and _ITEM.match(line):
                names = [n.strip() for n in _ITEM.match(line).group(1).split(",")]
                for name in names:
                    docs[name] = ""
            elif line.strip() and names:
                for name in names:
                    docs[name] = f"{docs[name]} {_plain(line.strip())}".strip()
    return docs


def settings_of(cls: type, *, exclude: Collection[str] = ()) -> tuple[Setting, ...]:
    """The settings of dataclass ``cls`` in field order, leaving out ``exclude``.

    Raises
    ------
    TypeError
        A field without a plain default or of a type other than bool, int, float or
        str; or an unknown name in ``exclude``.
    ValueError
        A field the ``Attributes`` section does not document.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(exclude) - set(fields))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    settings = []
    for name, field in fields.items():
        if name in exclude:
            continue
        kind = hints[name]
        if kind not in (bool, int, float, str) or field.default is dataclasses.MISSING:
            raise TypeError(
                f"{cls.__name__}.{name}: a setting needs a plain bool, int, float or str "
                f"default, got {kind} = {field.default!r}"
            )
        if not docs.get(name):
            raise ValueError(f"{cls.__name__}.{name} is not documented under Attributes")
        choices = tuple(field.metadata.get("choices", ()))
        settings.append(Setting(name, kind, field.default, docs[name], choices))
    return tuple(settings)


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    exclude: Collection[str] = (),
) -> None:
    """Add one flag per setting of ``cls`` to ``parser``, with the field's default.

    ``bool`` settings get ``--name`` / ``--no-name``; the others take one value of the
    field's type (and ``choices``).
    """
    for setting in settings_of(cls, exclude=exclude):
        text = setting.help.replace("%", "%%")  # argparse formats help with %
        if setting.kind is bool:
            parser.add_argument(
                setting.flag, action=argparse.BooleanOptionalAction, default=setting.default,
                help=f"{text} (default: {'on' if setting.default else 'off'})",
            )
        else:
            parser.add_argument(
                setting.flag, type=setting.kind, default=setting.default,
                choices=setting.choices or None, metavar=_METAVARS.get(setting.kind),
                help=f"{text} (default: {setting.default})",
            )


def from_values(cls: type[C], values: Mapping[str, Any] | argparse.Namespace,
                *, exclude: Collection[str] = ()) -> C:
    """An instance of ``cls`` from flag or parameter values keyed by field name.

    Every setting of ``cls`` except ``exclude`` is read from ``values`` (an
    ``argparse.Namespace`` of :func:`add_flags` flags, or a mapping of ROS parameter
    values), converted to the field's type; excluded fields keep their defaults.

    Raises
    ------
    KeyError
        A setting missing from ``values``.
    ValueError
        A value the dataclass refuses (its message names the field).
    """
    table = vars(values) if isinstance(values, argparse.Namespace) else values
    return cls(**{s.name: s.kind(table[s.name]) for s in settings_of(cls, exclude=exclude)})
