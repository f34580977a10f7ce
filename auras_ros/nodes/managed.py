"""What the managed (lifecycle) nodes of this package add to rclpy.lifecycle."""

from __future__ import annotations

from typing import Any

from lifecycle_msgs.srv import ChangeState
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from auras_ros.core.errors import ConfigError


def start_if(node: LifecycleNode, autostart: bool | None) -> None:
    """configure + activate now when ``autostart`` (None: the node's ``autostart`` parameter) says so."""
    if node.get_parameter("autostart").value if autostart is None else autostart:
        start(node)


def start(node: LifecycleNode) -> None:
    """configure + activate; the node's ``config_error`` (or a generic ConfigError) if configure refused."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise getattr(node, "config_error", None) or ConfigError(node.get_name(), "configure",
                                                                 "a successful configure transition")
    node.trigger_activate()


def refuse_configure(node: LifecycleNode, error: Exception) -> TransitionCallbackReturn:
    """configure's refusal: the error kept as the node's ``config_error`` (what :func:`start` raises) and logged."""
    node.config_error = error
    node.get_logger().error(f"configure refused: {error}")
    return TransitionCallbackReturn.FAILURE


def refuse_unavailable_transitions(node: LifecycleNode) -> None:
    """Answer a ``~/change_state`` request for a transition the current state lacks with success false,
    as rclcpp does. rclpy 7.1 (Jazzy, before ros2/rclpy#1319) lets the state machine's error escape the
    service callback, which ends the node's process (or, composed, the node) on one bad request."""
    service = next(s for s in node.services if s.srv_type is ChangeState)
    change_state = service.callback

    def guarded(request: Any, response: Any) -> Any:
        try:
            return change_state(request, response)
        except RuntimeError as error:  # rclpy's RCLError: the state machine refused before any change
            node.get_logger().warning(f"~/change_state: transition {request.transition.id} "
                                      f"{request.transition.label!r} refused: {str(error).splitlines()[0]}")
            response.success = False
            return response

    service.callback = guarded
