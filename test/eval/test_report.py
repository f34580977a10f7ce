"""The reports' sentences come from the data: two evaluations that differ give different findings, the
machine facts printed are the ones recorded at run time, and a claim without data is left out. Synthetic
evaluations (no episodes run), so each case is chosen exactly."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from auras_ros.eval.report import (age_tolerance, age_tolerance_sentence, bag_markdown, headline_sentence,
                                   machine_sentence, render_report, seq_age_sentence, write_bag_report)
from auras_ros.eval.results import ConfigResult, Evaluation, Machine, load_evaluation, write_json
from auras_ros.eval.scoring import (ActionRecord, ActionScorer, BagEvaluation, ReferenceInfo, ReferenceSeries,
                                    score_run)

SEQ_CI = (0.84, 1.0)  # Wilson's interval for 20 successes in 20
TWO_CORES = Machine(cpus=2, cpus_usable=2, load_avg=(3.5, 2.0, 1.5), torch_version="2.5.1", device="cpu",
                    cpu_model="Test CPU")
BIG = Machine(cpus=64, cpus_usable=16, load_avg=(0.5, 0.4, 0.3), torch_version="2.6.0",
              device="cuda:0 (NVIDIA H200)")


def _row(spec: str, success: float, age: float, decisions_per_s: float = 50.0) -> ConfigResult:
    return ConfigResult(spec=spec, episodes=20, success_rate=success, success_ci=(max(0.0, success - 0.2), 1.0),
                        ratio_to_seq=success, ratio_ci=(success, success), decisions_per_frame=1.0,
                        age_p50_frames=age, age_p99_frames=age, age_p50_s=0.05 * age, age_p99_s=0.05 * age,
                        interval_cv=0.0, mean_time_to_success=20.0, tracking_error=0.1,
                        decisions_per_s=decisions_per_s, throughput_vs_seq=decisions_per_s / 50.0)


def _evaluation(*rows: ConfigResult, machine: Machine | None = None) -> Evaluation:
    seq = replace(_row("seq", 1.0, 1.0), success_ci=SEQ_CI)
    return Evaluation("expert", {"image_size": 16, "frame_period": 0.05}, list(range(20)), 1, 1, [seq, *rows],
                      machine)


# The shipped diffusion results' shape: 2 frames keep success, 3 lose it.
EDGE_AT_3 = _evaluation(_row("par:2", 1.0, 2.0), _row("par:3", 0.10, 3.0), _row("dec:2", 0.10, 3.0),
                        _row("auras:1+5:f0:a0", 1.0, 1.0, 130.0))
# A more tolerant task: 3 frames still keep it, 4 lose it, and one 4-frame row keeps it anyway.
EDGE_AT_4 = _evaluation(_row("par:3", 0.95, 3.0), _row("par:4", 0.30, 4.0), _row("auras:2+5:f-1:a0", 0.90, 4.0),
                        _row("auras:1+5:f0:a0", 0.80, 1.0, 130.0))


def test_the_age_finding_is_computed_from_the_rows():
    t3, t4 = age_tolerance(EDGE_AT_3), age_tolerance(EDGE_AT_4)
    assert (t3.kept_up_to, t3.lost_at, t3.floor) == (2, 3, 0.84)
    assert [r.name for r in t3.kept] == ["par:2"] and [r.name for r in t3.lost] == ["par:3", "dec:2"]
    # At 1 frame the Auras row at 0.80 is below SEQ's 0.84: success is lost already at the youngest age.
    assert (t4.kept_up_to, t4.lost_at) == (None, 1)
    s3, s4 = age_tolerance_sentence(t3), age_tolerance_sentence(t4)
    assert s3 != s4
    assert "at most 2 frames old (p50; at 2 frames: par:2)" in s3
    assert "at 3 frames success falls below it for par:3 (0.10), dec:2 (0.10)" in s3
    assert "at 1 frame success falls below SEQ's 95% CI (≥ 0.84) for auras:1+5:f0:a0 (0.80), not for seq (1.00)" in s4


def test_rows_that_keep_success_anyway_are_named_and_no_loss_is_not_invented():
    kept_at_1 = replace(EDGE_AT_4, results=[r if r.name != "auras:1+5:f0:a0" else replace(r, success_rate=1.0)
                                            for r in EDGE_AT_4.results])
    t = age_tolerance(kept_at_1)
    assert (t.kept_up_to, t.lost_at) == (3, 4)
    sentence = age_tolerance_sentence(t)
    assert "at 4 frames success falls below it for par:4 (0.30), not for auras:2+5:f-1:a0 (0.90)" in sentence
    never_lost = _evaluation(_row("par:2", 1.0, 2.0))
    assert age_tolerance_sentence(age_tolerance(never_lost)).endswith("none evaluated falls below it.")
    assert age_tolerance(replace(never_lost, results=never_lost.results[1:])) is None  # no SEQ: no CI to hold


def test_seq_real_time_age_is_placed_against_the_frame_stepped_finding():
    t = age_tolerance(EDGE_AT_3)
    assert "within the 2 frames that keep" in seq_age_sentence(_row("seq", 0.8, 1.98), t)
    assert "between the oldest age that keeps" in seq_age_sentence(_row("seq", 0.8, 2.5), t)
    assert "at or beyond 3 frames" in seq_age_sentence(_row("seq", 0.8, 3.2), t)
    assert seq_age_sentence(_row("seq", 0.8, 3.2), None) is None


def test_headline_follows_the_data():
    assert headline_sentence(EDGE_AT_3).startswith("auras:1+5:f0:a0 keeps 100% of SEQ's success")
    assert "2.60x SEQ's decisions/s" in headline_sentence(EDGE_AT_3)
    assert headline_sentence(EDGE_AT_4) == "no Auras configuration kept SEQ's success on these episodes"
    assert headline_sentence(_evaluation(_row("par:2", 1.0, 2.0))) == "no Auras configuration was evaluated"


def test_machine_facts_are_the_recorded_ones():
    small, big = machine_sentence(TWO_CORES, 1), machine_sentence(BIG, 4)
    assert "2 CPUs (Test CPU)" in small and "load average 3.5 / 2.0 / 1.5" in small and "torch 2.5.1" in small
    assert "more runnable threads than usable CPUs" in small and "torch threads = 1" in small
    assert "16 of 64 CPUs usable" in big and "model on cuda:0 (NVIDIA H200)" in big
    assert "runnable" not in big and "torch threads = 4" in big
    assert machine_sentence(None, 1) == "Torch threads = 1." and machine_sentence(None) is None
    assert "2 CPUs" in render_report(replace(EDGE_AT_3, machine=TWO_CORES))
    assert "CPUs" not in render_report(EDGE_AT_3)  # nothing recorded: nothing said


def test_report_text_changes_with_the_evaluation():
    a, b = render_report(EDGE_AT_3), render_report(EDGE_AT_4)
    assert "at 3 frames success falls below it" in a and "at 3 frames" not in b
    assert "shared with other jobs" not in a + b  # the old fixed claims are gone


def test_machine_round_trips_and_older_json_still_loads(tmp_path: Path):
    write_json(tmp_path / "new.json", replace(EDGE_AT_3, machine=TWO_CORES))
    assert load_evaluation(tmp_path / "new.json").machine == TWO_CORES
    old = json.loads((tmp_path / "new.json").read_text())
    del old["machine"]  # as written before machines were recorded
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = load_evaluation(tmp_path / "old.json")
    assert loaded.machine is None and [r.name for r in loaded.results] == [r.name for r in EDGE_AT_3.results]


def test_machine_now_records_this_machine():
    now = Machine.now("cpu")
    assert now.cpus >= now.cpus_usable >= 1 and len(now.load_avg) == 3 and now.device == "cpu"
    assert now.torch_version  # the project runs on torch


# ---- the report of actions scored against a reference -------------------------------------------


def _reference() -> ReferenceSeries:
    reference = ReferenceSeries("/cmd_vel", "geometry_msgs/msg/Twist", ("linear.x", "angular.z"), (0.5, 1.0))
    for i in range(10):
        reference.add(0.1 * i, [0.1 * i, -0.1 * i])
    return reference


def _scored_run(reference: ReferenceSeries, lag: int, rates: list[float] | None = None):
    scorer = ActionScorer(reference)
    for i in range(8):
        scorer.add_action(ActionRecord(i, 0.1 * i, 0.1 * (i + lag), 0.1 * lag, 0.01 * i, (0.2 * i, -0.1 * i)))
    scorer.flush(final=True)
    return score_run(scorer.scored, scorer.unmatched, reference, 0.1, rates)


def test_bag_report_says_what_its_runs_hold(tmp_path: Path):
    reference = _reference()
    one = BagEvaluation("test", 0.1, ReferenceInfo.of(reference), {"graph": _scored_run(reference, 1)},
                        actions_missed=2, machine=TWO_CORES)
    repeated = BagEvaluation("test", 0.1, ReferenceInfo.of(reference),
                             {"seq": _scored_run(reference, 1, [10.0, 12.0, 11.0]),
                              "auras:1+2:f0:a0": _scored_run(reference, 2, [20.0, 30.0, 22.0])}, bad_images=3)
    a, b = bag_markdown(one), bag_markdown(repeated)
    assert "| decisions/s |" in a and "x seq" not in a and "interleaved" not in a
    assert "2 actions (by request id) never arrived" in a and "2 CPUs" in a and "undecodable" not in a
    assert "| decisions/s | x seq |" in b and "the median [min–max] of 3 interleaved runs" in b
    assert "3 undecodable camera images were skipped" in b and "Machine" not in b
    assert "| seq | 8 | 11 [10–12] | 1 [1–1] |" in b and "| auras:1+2:f0:a0 | 8 | 22 [20–30] | 2 [2–2.5] |" in b
    assert write_bag_report(repeated, tmp_path) == tmp_path / "report.md"
    written = json.loads((tmp_path / "evaluation.json").read_text())
    assert written["ok"] and written["runs"]["seq"]["rates"] == [10.0, 12.0, 11.0]
    assert [d["field"] for d in written["runs"]["seq"]["per_dimension"]] == ["linear.x", "angular.z"]
    assert written["reference"] == {"topic": "/cmd_vel", "type": "geometry_msgs/msg/Twist",
                                    "fields": ["linear.x", "angular.z"], "scale": [0.5, 1.0], "samples": 10}


def test_bag_evaluation_with_nothing_scored_writes_only_strict_json(tmp_path: Path):
    empty = ReferenceSeries("sim/state", "auras_ros/msg/SimState", ("expert_action[0]",), (1.0,))
    run = score_run([], 0, empty, 0.05)
    evaluation = BagEvaluation("nothing", 0.05, ReferenceInfo.of(empty), {"graph": run},
                               reason="no reference on sim/state")
    assert not evaluation.ok and write_bag_report(evaluation, tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation.json"]

    def no_nan(constant: str) -> float:
        raise AssertionError(f"{constant} in strict JSON")

    written = json.loads((tmp_path / "evaluation.json").read_text(), parse_constant=no_nan)
    assert written["ok"] is False and written["reason"] == "no reference on sim/state"
    assert written["runs"]["graph"]["error_mean"] is None and math.isnan(run.error_mean)


@pytest.mark.parametrize("field_name", ["actions_received", "actions_missed", "actions_digest", "model"])
def test_bag_json_keeps_the_keys_its_readers_use(tmp_path: Path, field_name: str):
    reference = _reference()
    evaluation = BagEvaluation("test", 0.1, ReferenceInfo.of(reference), {"graph": _scored_run(reference, 1)})
    write_bag_report(evaluation, tmp_path)
    assert field_name in json.loads((tmp_path / "evaluation.json").read_text())
