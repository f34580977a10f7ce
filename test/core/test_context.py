import math
import threading

import pytest
from hypothesis import given, settings, strategies as st

from auras_ros.core.clock import SimClock, WallClock
from auras_ros.core.context import KeySpec, Policy, PublicContext, SourceOrder, StaleContextError, Verdict
from auras_ros.core.errors import ConfigError, InputError

stamps = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=12)


def _context(policy: Policy, max_age: float, now: float, history: int = 16) -> tuple[PublicContext, SimClock]:
    clock = SimClock()
    clock.wait_until(now)
    return PublicContext([KeySpec("k", max_age=max_age, policy=policy)], clock, history=history), clock


@given(stamps, st.floats(0.01, 50), st.floats(0, 150))
def test_drop_never_returns_an_entry_older_than_max_age(writes: list[float], max_age: float, now: float) -> None:
    context, _ = _context(Policy.DROP, max_age, now)
    for seq, stamp in enumerate(writes):
        context.write("k", seq, stamp=stamp, seq=seq)
    read = context.read("k")
    if read.entry is not None:
        assert now - read.entry.stamp <= max_age and read.verdict is Verdict.FRESH
    else:
        assert read.verdict is Verdict.DROPPED and now - writes[-1] > max_age


@given(stamps, st.floats(0.01, 50), st.floats(0, 150))
def test_hold_returns_the_newest_and_flags_it_when_stale(writes: list[float], max_age: float, now: float) -> None:
    context, _ = _context(Policy.HOLD, max_age, now)
    for seq, stamp in enumerate(writes):
        context.write("k", seq, stamp=stamp, seq=seq)
    read = context.read("k")
    assert read.entry.seq == len(writes) - 1 and read.usable
    assert read.stale == (now - writes[-1] > max_age)
    assert read.age == pytest.approx(now - writes[-1])


def test_error_policy_raises_with_the_age() -> None:
    context, _ = _context(Policy.ERROR, 1.0, 10.0)
    context.write("k", "v", stamp=5.0, seq=0)
    with pytest.raises(StaleContextError, match="'k' is stale: age 5.0"):
        context.read("k")


def test_age_is_judged_on_the_sensor_stamp_not_on_arrival() -> None:
    context, clock = _context(Policy.DROP, 1.0, 10.0)
    context.write("k", "late", stamp=2.0, seq=0)  # arrives now, sensed 8 s ago
    assert context.read("k").verdict is Verdict.DROPPED
    assert context.history("k")[-1].produced_at == clock.now()


def test_wait_times_out_when_nothing_fresh_comes() -> None:
    clock = WallClock()
    context = PublicContext([KeySpec("k", max_age=0.5, policy=Policy.WAIT, wait_timeout=0.02)], clock)
    context.write("k", "old", stamp=clock.now() - 10, seq=0)
    read = context.read("k")
    assert read.verdict is Verdict.WAIT_TIMEOUT and read.entry is None


def test_wait_returns_the_fresh_entry_a_writer_brings() -> None:
    clock = WallClock()
    context = PublicContext([KeySpec("k", max_age=5.0, policy=Policy.WAIT, wait_timeout=30.0)], clock)
    context.write("k", "old", stamp=clock.now() - 10, seq=0)
    start = threading.Barrier(2)

    def writer() -> None:
        start.wait()
        context.write("k", "new", stamp=clock.now(), seq=1)

    thread = threading.Thread(target=writer)
    thread.start()
    start.wait()
    read = context.read("k")
    thread.join()
    assert read.verdict is Verdict.FRESH and read.entry.value == "new"


def test_fetch_offset_selects_the_frame_slot() -> None:
    context = PublicContext([KeySpec("k")], SimClock())
    for frame in range(4):
        context.begin_frame(frame)
        context.write("k", f"percept@{frame}", stamp=0.0, seq=frame)
    assert context.read("k", frame=3, fetch_offset=0).entry.value == "percept@3"
    assert context.read("k", frame=3, fetch_offset=-1).entry.value == "percept@2"
    assert context.read("k", frame=0, fetch_offset=-1).verdict is Verdict.MISSING


def test_memory_is_bounded_to_the_history_ring() -> None:
    context = PublicContext([KeySpec("k")], SimClock(), history=3)
    for seq in range(50):
        context.write("k", seq, stamp=0.0, seq=seq)
    assert [e.seq for e in context.history("k")] == [47, 48, 49]


@settings(deadline=None, max_examples=10)
@given(st.integers(2, 4))
def test_readers_never_see_a_half_written_entry(writers: int) -> None:
    context = PublicContext([KeySpec("k")], WallClock(), history=4)
    done = threading.Event()
    problems: list[str] = []

    def write(offset: int) -> None:
        for i in range(300):
            seq = i * writers + offset
            context.write("k", (seq, seq * 2, str(seq)), stamp=float(seq), seq=seq)

    def read() -> None:
        while not done.is_set():
            entry = context.read("k").entry
            if entry is not None:
                seq, double, text = entry.value
                if not (entry.seq == seq and double == 2 * seq and text == str(seq) and entry.stamp == seq):
                    problems.append(repr(entry))

    readers = [threading.Thread(target=read) for _ in range(2)]
    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert problems == []
    assert len(context.history("k")) == 4


def test_snapshot_is_immutable() -> None:
    context = PublicContext([KeySpec("a"), KeySpec("b")], SimClock())
    context.write("a", 1, stamp=0.0, seq=0)
    snapshot = context.snapshot()
    context.write("a", 2, stamp=0.0, seq=1)
    assert snapshot["a"].entry.value == 1 and snapshot["b"].verdict is Verdict.MISSING
    with pytest.raises(TypeError):
        snapshot["a"] = None  # type: ignore[index]


def test_changing_a_cancelling_key_notifies() -> None:
    context = PublicContext([KeySpec("instruction", cancels_in_flight=True)], SimClock())
    seen: list[str] = []
    context.on_invalidate(seen.append)
    context.write("instruction", "pick", stamp=0.0, seq=0)
    context.write("instruction", "pick", stamp=1.0, seq=1)
    context.write("instruction", "place", stamp=2.0, seq=2)
    assert seen == ["instruction"]


@pytest.mark.parametrize("kwargs, field", [
    ({"max_age": 0}, "k.max_age"),
    ({"max_age": -1.0}, "k.max_age"),
    ({"max_age": math.nan}, "k.max_age"),
    ({"policy": "sometimes"}, "k.policy"),
    ({"wait_timeout": math.inf}, "k.wait_timeout"),
])
def test_bad_key_spec_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        KeySpec("k", **kwargs)
    assert error.value.field == field
    if field == "k.policy":
        assert "'hold', 'drop', 'wait', 'error'" in str(error.value)


def test_bad_fetch_offset_and_unknown_key() -> None:
    context = PublicContext([KeySpec("k")], SimClock())
    with pytest.raises(ConfigError, match="fetch_offset=1: expected one of 0, -1"):
        context.read("k", frame=0, fetch_offset=1)
    with pytest.raises(ConfigError, match="key='nope'"):
        context.read("nope")


def test_wait_without_blocking_answers_at_once() -> None:
    context = PublicContext([KeySpec("k", max_age=0.1, policy=Policy.WAIT, wait_timeout=3600.0)], WallClock())
    context.write("k", 1, stamp=WallClock().now() - 10.0, seq=0)
    read = context.read("k", block=False)  # would sleep an hour if it waited
    assert read.verdict is Verdict.WAIT_TIMEOUT and read.entry is None and read.age > 0.1


def test_a_new_source_restarts_the_order_of_stamps() -> None:
    order = SourceOrder(future_tolerance=0.05)
    assert order.admit(source=1, seq=5000, stamp=100.0, now=100.0, where="test") is False
    with pytest.raises(InputError, match="previous stamp"):
        order.admit(source=1, seq=1, stamp=50.0, now=100.0, where="test")  # same source, going back
    assert order.admit(source=2, seq=1, stamp=50.0, now=100.0, where="test") is True  # a restarted publisher
    assert order.admit(source=2, seq=2, stamp=51.0, now=100.0, where="test") is False
    assert order.restarts == 1


@pytest.mark.parametrize("seq, stamp, what", [
    (2**63, 1.0, "observation_seq"), (-1, 1.0, "observation_seq"), (2**53, 1.0, "observation_seq"),
    (1, math.inf, "stamp"), (1, math.nan, "stamp"), (1, 1e18, "stamp"),
])
def test_absurd_seq_and_stamps_are_refused_and_do_not_hold_later_ones_back(seq: int, stamp: float, what: str) -> None:
    order = SourceOrder(future_tolerance=0.05)
    with pytest.raises(InputError) as error:
        order.admit(source=1, seq=seq, stamp=stamp, now=10.0, where="test")
    assert error.value.what == what
    assert order.admit(source=1, seq=1, stamp=9.0, now=10.0, where="test") is False


def test_max_age_crosses_between_the_core_and_its_ros_form_in_one_place():
    # ROS durations and double parameters have no infinity: 0 there is the core's inf, both ways.
    from auras_ros.core.context import max_age_from_seconds, max_age_to_seconds
    assert max_age_from_seconds(0.0) == math.inf
    assert max_age_to_seconds(math.inf) == 0.0
    for seconds in (0.05, 2.0):
        assert max_age_to_seconds(max_age_from_seconds(seconds)) == seconds
