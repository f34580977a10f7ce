"""Declared, described and validated node parameters.

Every parameter is declared with a description, its range or allowed values and a default; a bad
value makes the node refuse to start with one clear ConfigError naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException, ParameterUninitializedException
from rclpy.node import Node

from auras_ros.core.errors import ConfigError, one_of


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple[Any, ...] | None = None

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description)
        if self.choices is not None:
            descriptor.additional_constraints = one_of(self.choices)
        if isinstance(self.default, bool) or (self.low is None and self.high is None):
            return descriptor
        if isinstance(self.default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(self.low if self.low is not None else -2**62),
                                                     to_value=int(self.high if self.high is not None else 2**62),
                                                     step=0)]
        elif isinstance(self.default, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(self.low if self.low is not None else -math.inf),
                to_value=float(self.high if self.high is not None else math.inf), step=0.0)]
        return descriptor

    def check(self, value: Any, node_name: str) -> Any:
        field = f"{node_name}.{self.name}"
        if isinstance(self.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # YAML writes 1 for 1.0
        if type(value) is not type(self.default) and not (isinstance(self.default, list)):
            raise ConfigError(field, value, f"a {type(self.default).__name__}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(field, value, one_of(self.choices))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(value) or (self.low is not None and value < self.low) or (
                    self.high is not None and value > self.high):
                raise ConfigError(field, value, f"a number in [{self.low}, {self.high}]")
        return value


def declare(node: Node, params: Iterable[Param]) -> dict[str, Any]:
    """Declare ``params`` on ``node`` and return their validated values by name."""
    values = {}
    for param in params:
        try:
            node.declare_parameter(param.name, param.default, param.descriptor())
            value = node.get_parameter(param.name).value
        except InvalidParameterValueException as error:
            # rclpy keeps the value only in its message: "Invalid parameter value (V) for parameter. ..."
            raise ConfigError(f"{node.get_name()}.{param.name}", str(error).split("(", 1)[-1].split(")", 1)[0],
                              f"a value accepted by its descriptor: {param.description}"
                              + (f" in [{param.low}, {param.high}]" if param.low is not None else "")) from None
        except (ParameterUninitializedException, TypeError) as error:
            raise ConfigError(f"{node.get_name()}.{param.name}", None, f"a {type(param.default).__name__}: {error}") from None
        values[param.name] = param.check(value, node.get_name())
    return values
