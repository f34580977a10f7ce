"""Fuzzing every input topic of the running graph (camera → perception → context → generation, one
process each; perception is triggered by images, so auras/frame is no input here) with
hypothesis-generated messages, well-formed and not. The camera starts after the fuzz, so no fuzzed
image is overwritten unseen. Afterwards every node is still up, none reported ERROR, the bad input
was counted, and actions come. Example counts are bounded so the suite stays fast on 2 cores."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import String

from auras_ros.msg import AgentAction, ContextEntry, ContextState, Percept, PipelineStats, TensorPayload
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from node_graph import DEMO_FRAMES
from reliability_graph import NodeProcesses, Probe, drops, now_stamp

EXAMPLES = 20  # per topic

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
# A stamp near the probe's now (well-formed; seconds of offset), or any value a Time can hold.
stamps = st.one_of(st.floats(-5.0, 0.2), st.builds(Time, sec=st.integers(-2**31, 2**31 - 1), nanosec=u32))
payloads = st.builds(
    TensorPayload, dtype=st.sampled_from(["float32", "float64", "uint8", "text/utf-8", "complex999", ""]),
    shape=st.lists(st.integers(0, 2048), max_size=3), transport=st.integers(0, 3), data=st.binary(max_size=4096),
    shm_name=st.text("abcdef0123456789_/.", max_size=24), shm_offset=u64, shm_generation=u64, nbytes=u64,
    handle_id=u64)
images = st.builds(
    Image, height=st.integers(0, 64), width=st.integers(0, 64), step=u32, is_bigendian=st.integers(0, 1),
    encoding=st.sampled_from(["rgb8", "bgr8", "mono8", "rgba8", "yuv422", "16UC1", ""]), data=st.binary(max_size=12288))
percepts = st.tuples(stamps, st.builds(Percept, key=st.sampled_from(["percept", "vision", ""]), observation_seq=u64,
                                       source_id=u64, frame=u32, tensor=payloads))
entries = st.tuples(stamps, st.builds(ContextEntry, key=st.sampled_from(["percept", "instruction", "other"]),
                                      observation_seq=u64, source_id=u64, verdict=st.integers(0, 255),
                                      policy=st.text(max_size=8), value=payloads))
contexts = st.lists(entries, max_size=3)


def _stamp(probe: Probe, stamp: Any) -> Time:
    return now_stamp(probe, stamp) if isinstance(stamp, float) else stamp


def test_fuzzed_input_on_every_topic_is_survived_counted_and_actions_keep_coming(ros_env, tmp_path) -> None:
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        actions: list[AgentAction] = probe.record(AgentAction, "auras/action", ORDERED)
        stats: list[PipelineStats] = probe.record(PipelineStats, "auras/pipeline_stats", ORDERED)
        perception_stats: list[PipelineStats] = probe.record(PipelineStats, "auras/perception_stats", ORDERED)
        diagnostics: list[DiagnosticArray] = probe.record(DiagnosticArray, "/diagnostics", ORDERED)
        graph.start("perception_node", stats_period=0.5)  # trigger image: each fuzzed image is perceived
        graph.start("context_node", diagnostics_period=0.5)
        graph.start("generation_node", stats_period=0.5)
        procs = list(graph.procs.values())
        publishers = {topic: probe.node.create_publisher(kind, topic, qos) for topic, kind, qos in (
            ("camera/image_raw", Image, SENSOR_LATEST), ("auras/percept", Percept, LATEST_RELIABLE),
            ("auras/instruction", String, ORDERED), ("auras/context", ContextState, LATCHED))}
        assert probe.spin_until(lambda: all(p.get_subscription_count() for p in publishers.values()), procs)
        # Drops counted in a stats window published before its publisher matched the probe are lost.
        assert probe.spin_until(lambda: stats and perception_stats, procs)

        def publish(topic: str, msg: Any) -> None:
            publishers[topic].publish(msg)
            probe.executor.spin_once(timeout_sec=0.05)  # paces the examples; the nodes are other processes

        fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))

        @fuzz
        @given(images)
        def fuzz_images(msg: Image) -> None:
            msg.header.stamp = now_stamp(probe)
            publish("camera/image_raw", msg)

        @fuzz
        @given(percepts)
        def fuzz_percepts(example: tuple[Any, Percept]) -> None:
            stamp, msg = example
            msg.header.stamp = _stamp(probe, stamp)
            publish("auras/percept", msg)

        @fuzz
        @given(st.text(max_size=300))
        def fuzz_instructions(text: str) -> None:
            publish("auras/instruction", String(data=text))

        @fuzz
        @given(contexts)
        def fuzz_contexts(examples: list[tuple[Any, ContextEntry]]) -> None:
            msg = ContextState()
            for stamp, entry in examples:
                entry.stamp = _stamp(probe, stamp)
                msg.entries.append(entry)
            publish("auras/context", msg)

        for run in (fuzz_images, fuzz_percepts, fuzz_instructions, fuzz_contexts):
            run()
            assert all(p.poll() is None for p in procs), f"{run.__name__} ended a node\n{graph.output()}"

        # Then the real camera: the graph that took all of that still decides.
        procs.append(graph.start("camera_node", source=str(DEMO_FRAMES), rate_hz=30.0))
        assert probe.spin_until(lambda: len(actions) >= 20, procs), f"no actions after the fuzz\n{graph.output()}"
        assert all(p.poll() is None for p in procs), graph.output()
        # The fuzzed context entries come from a producer of their own: generation names the two
        # producers at ERROR (one source per role); any other ERROR is a fault.
        for node in ("generation_node", "perception_node"):
            errors = [s.message for a in diagnostics for s in a.status
                      if s.name == f"auras_ros/{node}" and s.level == DiagnosticStatus.ERROR]
            assert all("two producers" in e for e in errors), (errors, graph.output())
        assert any(r.startswith("bad_input:") for r in drops(perception_stats)), \
            (len(perception_stats), drops(perception_stats), graph.output())
        assert any(r.startswith(("bad_payload:", "bad_origin:", "frame_error:")) for r in drops(stats)), drops(stats)
        rejected = [int(v.value) for a in diagnostics for s in a.status if s.name == "auras_ros/context/percept"
                    for v in s.values if v.key == "rejected"]
        assert rejected and rejected[-1] > 0
    assert "Traceback" not in graph.output(), graph.output()
