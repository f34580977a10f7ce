"""Declared, described and validated node parameters.

Every parameter is declared with a description, its range or allowed values and a default; a bad
value makes the node refuse to start with one clear ConfigError naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import (
    InvalidParameterTypeException, InvalidParameterValueException, ParameterUninitializedException)
from rclpy.node import Node

from auras_ros.core.errors import ConfigError, one_of


MAX_NAME = 256  # a string parameter that is a name (a frame id, a topic): the most characters
MAX_STRING = 4096  # any other string parameter (PATH_MAX: it may name a file or directory)
SHOWN_CHARS = 200  # a refused value is shown up to this long


def shorten(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as text of at most ``limit`` characters, on one line, saying how long it was."""
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    max_length: int = MAX_STRING  # strings: the most characters
    # A text form's own parser (e.g. core.chunks.check_overlap): raises ConfigError for a malformed value.
    parse: Callable[[Any], Any] | None = None

    def descriptor(self) -> ParameterDescriptor:
        # A float or a string accepts an integer (YAML and -p write 1 for 1.0, 0 for the camera "0");
        # check() converts and bounds it.
        descriptor = ParameterDescriptor(description=self.description,
                                         dynamic_typing=isinstance(self.default, (float, str)))
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
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(self.default, (float, str)):
            value = type(self.default)(value)  # YAML writes 1 for 1.0, and 0 for the device "0"
        if type(value) is not type(self.default) and not (isinstance(self.default, list)):
            raise ConfigError(field, value, f"a {type(self.default).__name__}")
        if isinstance(self.default, list):
            value = list(value)
            if any(type(item) is not type(self.default[0]) for item in value) if self.default else False:
                raise ConfigError(field, value, f"a list of {type(self.default[0]).__name__}")
            if self.choices is not None and any(item not in self.choices for item in value):
                raise ConfigError(field, value, "a list of " + one_of(self.choices))
        elif self.choices is not None and value not in self.choices:
            raise ConfigError(field, shorten(value), one_of(self.choices))
        if self.parse is not None:
            try:
                self.parse(value)
            except ConfigError as error:
                raise ConfigError(field, shorten(value), error.allowed) from None
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and len(text) > self.max_length:
                raise ConfigError(field, shorten(text), f"a string of at most {self.max_length} characters")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(value) or (self.low is not None and value < self.low) or (
                    self.high is not None and value > self.high):
                raise ConfigError(field, value, f"a number in [{self.low}, {self.high}]")
        return value


_ROS_TYPE = {bool: "a bool (true or false)", int: "an integer", float: "a float", str: "a string",
             list: "a list"}


def _refused_value(error: InvalidParameterTypeException) -> str:
    """The value rclpy refused, from its message (it keeps it nowhere public): "Trying to set parameter
    'NAME' to 'VALUE' of type 'TYPE', expecting type 'TYPE'"."""
    message = str(error.args[0]) if error.args else str(error)
    _, _, rest = message.partition("' to '")
    return shorten(rest.rpartition("' of type '")[0] or message)


def declare(node: Node, params: Iterable[Param]) -> dict[str, Any]:
    """Declare ``params`` on ``node`` and return their validated values by name."""
    values = {}
    for param in params:
        try:
            node.declare_parameter(param.name, param.default, param.descriptor())
            value = node.get_parameter(param.name).value
        except InvalidParameterValueException as error:
            # rclpy keeps the value only in its message: "Invalid parameter value (V) for parameter. ..."
            raise ConfigError(f"{node.get_name()}.{param.name}", shorten(str(error).split("(", 1)[-1].split(")", 1)[0]),
                              f"a value accepted by its descriptor: {param.description}"
                              + (f" in [{param.low}, {param.high}]" if param.low is not None else "")) from None
        except InvalidParameterTypeException as error:
            # e.g. -p pp_generation:=two, or 1 for a float (write 1.0).
            raise ConfigError(f"{node.get_name()}.{param.name}", _refused_value(error),
                              f"{_ROS_TYPE[type(param.default)]}: {param.description}") from None
        except (ParameterUninitializedException, TypeError) as error:
            raise ConfigError(f"{node.get_name()}.{param.name}", None, f"a {type(param.default).__name__}: {error}") from None
        values[param.name] = param.check(value, node.get_name())
    return values


def read(node: Node, params: Iterable[Param]) -> dict[str, Any]:
    """The current, validated values of ``params`` declared earlier (e.g. at a lifecycle configure,
    after the parameters may have been set anew)."""
    return {p.name: p.check(node.get_parameter(p.name).value, node.get_name()) for p in params}
