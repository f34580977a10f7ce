"""The CPU ledger (core/cpu_costs.py) counts each hop for itself: a hop nested in another in the same
thread is taken off the enclosing one, and a hop in another thread is not."""

from __future__ import annotations

import threading
import time

from auras_ros.core.cpu_costs import CpuLedger


def burn() -> None:
    sum(i * i for i in range(200_000))


def test_a_nested_hop_counts_for_itself_and_the_hops_add_up_to_the_cpu_taken() -> None:
    ledger = CpuLedger()
    started = time.thread_time()
    with ledger.hop("outer"):
        with ledger.hop("inner"):
            burn()
    taken = time.thread_time() - started
    costs = ledger.snapshot()
    assert costs["outer"].messages == costs["inner"].messages == 1
    assert costs["inner"].seconds > 0 and costs["outer"].seconds >= 0
    # Exclusive times: together no more than the CPU the block took (inclusive, the inner counted twice, would be).
    assert costs["outer"].seconds + costs["inner"].seconds <= taken
    assert costs["outer"].seconds < costs["inner"].seconds  # the outer did nothing of its own but open the inner


def test_a_hop_in_another_thread_is_not_taken_off_an_open_one() -> None:
    """The other thread's hop runs entirely while "outer" is open here; taken off it, "outer" (which
    only waits, at no CPU) would come out negative."""
    ledger = CpuLedger()

    def other() -> None:
        with ledger.hop("other"):
            burn()

    with ledger.hop("outer"):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    costs = ledger.snapshot()
    assert costs["other"].seconds > 0 and costs["other"].messages == 1
    assert costs["outer"].seconds >= 0


def test_messages_and_per_message_cost_from_added_seconds() -> None:
    ledger = CpuLedger()
    ledger.add("frame", 0.03, messages=3)
    ledger.add("frame", 0.01)
    cost = ledger.snapshot()["frame"]
    assert cost.messages == 4 and abs(cost.ms_per_message - 10.0) < 1e-9
