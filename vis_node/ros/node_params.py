"""Declaring, checking and reading a node's parameters (the rclpy side of the tables).

:mod:`vis_node.ros.params` describes every parameter of every node; this module declares
them on a node with descriptors, refuses values outside their choices, patterns or
settings dataclass (on ``ros2 param set``), and reads them back checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from vis_node.ros.params import NodeSpec, Param
from vis_node.settings import from_values


def check_value(param: Param, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``param`` (choices, pattern), or ``None`` if it is.

    Types and numeric ranges are enforced by rclpy through the parameter descriptor.
    """
    if param.choices and value not in param.choices:
        return f"parameter {param.name}={value!r}: choose one of {', '.join(param.choices)}"
    if param.pattern and not re.fullmatch(param.pattern, str(value)):
        return f"parameter {param.name}={value!r} must match {param.pattern}"
    return None


def declare(node: Any, spec: NodeSpec) -> None:
    """Declare every parameter of ``spec`` on ``node`` with a descriptor.

    A later ``ros2 param set`` with a value outside a parameter's choices or pattern
    is refused (the set reports why); ranges are enforced by the descriptors.
    """
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )
    from rclpy.parameter import Parameter

    for param in spec.params:
        descriptor = ParameterDescriptor(description=param.description)
        if param.choices:
            descriptor.additional_constraints = f"one of: {', '.join(param.choices)}"
        if isinstance(param.default, float) and (param.low is not None or param.high is not None):
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(param.low if param.low is not None else -1e300),
                    to_value=float(param.high if param.high is not None else 1e300),
                )
            ]
        elif (
            isinstance(param.default, int)
            and not isinstance(param.default, bool)
            and (param.low is not None or param.high is not None)
        ):
            descriptor.integer_range = [
                IntegerRange(
                    from_value=int(param.low if param.low is not None else -(2**62)),
                    to_value=int(param.high if param.high is not None else 2**62),
                )
            ]
        if isinstance(param.default, list):
            # rclpy cannot type an empty list; declare the type, read unset as the default.
            descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
            node.declare_parameter(param.name, Parameter.Type.STRING_ARRAY, descriptor)
        else:
            node.declare_parameter(param.name, param.default, descriptor)
    node.add_on_set_parameters_callback(
        lambda params: validate(spec, params, lambda name: node.get_parameter(name).value)
    )


def validate(
    spec: NodeSpec, parameters: list[Any], current: Callable[[str], Any] | None = None
) -> Any:
    """``add_on_set_parameters_callback`` hook: refuse values outside choices / patterns,
    and settings their dataclass refuses.

    Parameters
    ----------
    spec:
        The node's interface.
    parameters:
        The parameters being set (``name`` and ``value``).
    current:
        Parameter name -> its current value; the settings dataclass is checked with
        these and the new values (default: the spec's defaults).
    """
    from rcl_interfaces.msg import SetParametersResult

    by_name = {p.name: p for p in spec.params}
    new_values: dict[str, Any] = {}
    for parameter in parameters:
        param = by_name.get(parameter.name)
        reason = None if param is None else check_value(param, parameter.value)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        new_values[parameter.name] = parameter.value
    settings = {p.settings for p in spec.params if p.settings and p.name in new_values}
    for cls in settings:
        values = {
            p.name: new_values[p.name] if p.name in new_values
            else (current(p.name) if current else p.default)
            for p in spec.params if p.settings is cls
        }
        try:
            from_values(cls, values)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=f"parameter {exc}")
    return SetParametersResult(successful=True)


def read(node: Any, spec: NodeSpec) -> dict[str, Any]:
    """Current parameter values of ``node``, checked against ``spec``.

    Raises
    ------
    ValueError
        A string parameter outside its choices or pattern; the message names it and
        what is allowed.
    """
    from rclpy.exceptions import ParameterUninitializedException

    values: dict[str, Any] = {}
    for param in spec.params:
        try:
            value = node.get_parameter(param.name).value
        except ParameterUninitializedException:
            value = param.default
        reason = check_value(param, value)
        if reason is not None:
            raise ValueError(reason)
        values[param.name] = list(value) if isinstance(param.default, list) else value
    return values
