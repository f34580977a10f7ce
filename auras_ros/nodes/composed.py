"""auras_composed: camera, perception, context, generation and action nodes in ONE process.

The embedded default and the fast path on one GPU: one model instance shared by perception and
generation, messages handed between the nodes as objects (nodes/local_delivery.py: nothing is
serialized on the critical path, while every topic is still published for outside subscribers),
tensors as in-process handles, and one executor thread per node (nodes/spinners.py), so each stage's
callbacks run beside the others' and perception and generation overlap.

    auras_composed [--no-camera | --camera] [--no-action] [--duration S] [--spinner events|single|events-shared]
        --ros-args --params-file config/auras.yaml

With ``--duration`` it stops after S seconds and prints one JSON line of the run's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any, Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args

from auras_ros.core.cpu_costs import CpuLedger
from auras_ros.core.errors import ConfigError, InputError
from auras_ros.msg import PipelineStats
from auras_ros.nodes.action_node import ActionNode
from auras_ros.nodes.camera_node import CameraNode
from auras_ros.nodes.context_node import ContextNode
from auras_ros.nodes.generation_node import GenerationNode
from auras_ros.nodes.health import exit_code, wait_stopped_or_failed
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.perception_node import PerceptionNode
from auras_ros.nodes.process import init_rclpy, start_nodes, stop_requested
from auras_ros.nodes.spinners import DEFAULT_SPINNER, SPINNERS, NodeSpinners
from auras_ros.transport import HandleRegistry


def summary(generation: GenerationNode) -> dict:
    """The run's numbers: totals over the whole run, percentiles over its newest decisions."""
    spec = generation.spec
    return {"executor": str(spec), "mode": spec.kind, "pp_perception": spec.pp_perception,
            "pp_generation": spec.pp_generation, **asdict(generation.run.summary())}


def print_live(stats: PipelineStats) -> None:
    print(f"  [{stats.mode}] {stats.decisions_per_s:6.1f} decisions/s   observation age p50 "
          f"{stats.observation_age_p50_s * 1e3:6.1f} ms  p99 {stats.observation_age_p99_s * 1e3:6.1f} ms   "
          f"in flight {stats.requests_in_flight}/{stats.max_requests_in_flight}", flush=True)


def compose(registry: HandleRegistry, *, camera: bool = True, action: bool = True, agent: Any = None,
            on_stats: Callable[[PipelineStats], None] | None = None, delivery: LocalDelivery | None = None,
            local_delivery: bool = True, **node_kwargs: Any) -> list[Node]:
    """The agent graph's nodes for one process, generation first. ``node_kwargs`` go to every node
    (e.g. ``context=``, ``parameter_overrides=``); ``delivery`` (one is made if None) lets further
    nodes of this process, e.g. a listener, take part in local delivery. ``local_delivery=False``
    makes every message cross DDS, as between processes (what bench.ros_overhead compares)."""
    shared = delivery if delivery is not None else LocalDelivery()
    cpu = CpuLedger()  # one for the process: a hop delivered inline nests in its publisher's (core/cpu_costs.py)

    def own() -> LocalDelivery:
        return shared if local_delivery else LocalDelivery()

    generation = GenerationNode(agent=agent, registry=registry, delivery=own(), on_stats=on_stats, autostart=False,
                                cpu=cpu, **node_kwargs)
    nodes: list[Node] = [generation]
    try:
        # The process drives the lifecycles: configure (loads the model; a bad parameter raises) and
        # activate (the frame clock) now, the model then shared with perception.
        generation.start()
        # One model for both stages: perception and generation share its weights.
        nodes.append(PerceptionNode(agent=generation.agent, registry=registry, delivery=own(), cpu=cpu, **node_kwargs))
        nodes.append(ContextNode(registry=registry, delivery=own(), cpu=cpu, **node_kwargs))
        if camera:
            nodes.append(CameraNode(delivery=own(), **node_kwargs))
        if action:
            nodes.append(ActionNode(autostart=False, delivery=own(), **node_kwargs))
            nodes[-1].start()
    except Exception:
        for node in nodes:
            if isinstance(node, PerceptionNode):
                node.stop_perceiving()  # not generation: it may not have started
        for node in reversed(nodes):
            node.destroy_node()
        raise
    return nodes


def stop_producers(nodes: list[Node]) -> None:
    """The nodes that produce from threads of their own stop first: generation deactivated (its frame
    clock ends, so no action leaves) and perception's thread ended (no percept reaches a node being
    destroyed)."""
    for node in nodes:
        if isinstance(node, GenerationNode):
            node.stop()
        elif isinstance(node, PerceptionNode):
            node.stop_perceiving()


def stop_composed(spinners: NodeSpinners | None, nodes: list[Node]) -> None:
    """The producers first (:func:`stop_producers`), then the executors' callbacks, the gate's stop,
    then the nodes."""
    stop_producers(nodes)
    if spinners is not None:
        spinners.shutdown()
    for node in nodes:
        if isinstance(node, ActionNode):
            node.shutdown()  # deactivate: a stop command, once no callback runs any more
    for node in reversed(nodes):
        node.destroy_node()


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    parser = argparse.ArgumentParser(prog="auras_composed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-camera", action="store_true", help="images come from another process")
    parser.add_argument("--camera", dest="no_camera", action="store_false",
                        help="the camera node runs (the default; for a launch file that chooses either)")
    parser.add_argument("--no-action", action="store_true", help="no action node (safety gate and robot outputs)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run on)")
    parser.add_argument("--live", action="store_true", help="print each PipelineStats window as it is published")
    parser.add_argument("--spinner", choices=tuple(SPINNERS), default=DEFAULT_SPINNER,
                        help="the rclpy executor (spinner) each node spins in (bench.ros_overhead compares them)")
    registry = HandleRegistry()
    nodes: list[Node] = []
    spinners = None
    try:
        init_rclpy(argv, signal_handler_options=SignalHandlerOptions.NO)
        options = parser.parse_args(remove_ros_args(argv)[1:])
        nodes = start_nodes(lambda cli_args: compose(
            registry, camera=not options.no_camera, action=not options.no_action,
            on_stats=print_live if options.live else None, **({"cli_args": cli_args} if cli_args else {})), argv)
        generation = nodes[0]
        with stop_requested() as stop:
            spinners = NodeSpinners(nodes, spinner=options.spinner).start()
            wait_stopped_or_failed(stop, nodes, options.duration if options.duration > 0 else None)
        if options.duration > 0:
            print(json.dumps(summary(generation)), flush=True)
        return exit_code(nodes)
    except (ConfigError, InputError) as error:
        print(f"auras_composed: refusing to start: {error}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        stop_composed(spinners, nodes)
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
