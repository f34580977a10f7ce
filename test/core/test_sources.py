from auras_ros.core.sources import StampedHistory


def test_stamped_history_pairs_by_stamp_and_falls_back_to_the_newest() -> None:
    history = StampedHistory(size=2)
    assert history.at(1.0) is None
    for stamp in (1.0, 2.0, 3.0):
        history.add(stamp, f"state@{stamp}")
    assert history.at(2.0) == ("state@2.0", True)
    assert history.at(1.0) == ("state@3.0", False)  # evicted: only the newest two are kept
    assert history.at(9.0) == ("state@3.0", False)
