"""The evaluation reports, in one format: Markdown tables, sentences computed from the evaluation and the
machine facts it recorded when it ran, matplotlib plots (PNG, Agg backend, no display) and the JSON.

Two reports use it: the closed-loop report (frame-stepped, real time, α sweep; :func:`write_report`)
and the report of actions scored against a recorded reference (``bag_eval`` and ``evaluator_node``;
:func:`write_bag_report`). A sentence that states a finding is written only when the data holds it.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from auras_ros.core.partition import skew_partition
from auras_ros.core.stats import Spread, percentile, rate_text
from auras_ros.eval.results import (ConfigResult, Evaluation, Machine, RealTimeEvaluation, headline, load_evaluation,
                                    load_realtime, write_json)
from auras_ros.eval.files import replace_atomically, write_failed, write_text_atomically
from auras_ros.eval.scoring import BagEvaluation, ScoredRun
from auras_ros.eval.seams import ChunkSummary

# ---- shared by every report ------------------------------------------------------------------------


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _pyplot() -> Any:
    """pyplot on the Agg backend, imported when a plot is drawn (the evaluator node starts without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int = 100) -> None:
    fig.tight_layout()
    try:
        replace_atomically(path, lambda temporary: fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".")))
    finally:
        _pyplot().close(fig)


def _error_bars(values: Sequence[float], intervals: Sequence[tuple[float, float]]) -> np.ndarray:
    """matplotlib's ``yerr`` (2 x n: below, above) for values with their intervals."""
    return np.array([[v - lo, hi - v] for v, (lo, hi) in zip(values, intervals, strict=False)]).T


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _command(command: str | None) -> list[str]:
    return [f"Command: `{command}`", ""] if command else []


def _sentences(*sentences: str | None) -> str:
    """The sentences the data supports (None: not supported, left out), as one paragraph."""
    return " ".join(s for s in sentences if s)


def machine_sentence(machine: Machine | None, threads: int | None = None) -> str | None:
    """Where the runs ran, as recorded when they ended; None when nothing was recorded."""
    if machine is None:
        return f"Torch threads = {threads}." if threads is not None else None
    cpus = (f"{machine.cpus} CPUs" if machine.cpus_usable == machine.cpus
            else f"{machine.cpus_usable} of {machine.cpus} CPUs usable")
    facts = [cpus + (f" ({machine.cpu_model})" if machine.cpu_model else "")]
    if all(math.isfinite(x) for x in machine.load_avg):
        facts.append("load average {:.1f} / {:.1f} / {:.1f} over 1 / 5 / 15 min when the runs ended"
                     .format(*machine.load_avg))
        if machine.load_avg[0] > machine.cpus_usable:
            facts.append("more runnable threads than usable CPUs, so the runs competed for them")
    facts += [f"torch {machine.torch_version}"] if machine.torch_version else []
    facts += [f"model on {machine.device}"] if machine.device else []
    facts += [f"torch threads = {threads}"] if threads is not None else []
    return f"Machine: {'; '.join(facts)}."


def _seed_span(seeds: Sequence[int]) -> str:
    return f"(seeds {seeds[0]}..{seeds[-1]})" if seeds else ""


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def _with_success(results: Sequence[ConfigResult]) -> str:
    return ", ".join(f"{r.name} ({r.success_rate:.2f})" for r in results)


def _seq(results: Iterable[ConfigResult]) -> ConfigResult | None:
    return next((r for r in results if r.kind == "seq"), None)


# ---- findings of the closed-loop evaluation -------------------------------------------------------


@dataclass(frozen=True)
class AgeTolerance:
    """Frame-stepped success against observation age (each row at its p50 age, in whole frames): a row
    keeps SEQ's success when it is at or above the lower bound of SEQ's 95% interval."""

    floor: float  # SEQ's lower 95% bound
    kept_up_to: int | None  # every row this old or younger keeps success; None: not even the youngest
    kept: list[ConfigResult]  # the rows at kept_up_to
    lost_at: int | None  # the youngest age with a row below the floor; None: no row falls below
    lost: list[ConfigResult]  # the rows at lost_at below the floor
    spared: list[ConfigResult]  # the rows at lost_at that keep success anyway


def age_tolerance(evaluation: Evaluation) -> AgeTolerance | None:
    """The oldest observation age at which success stays within SEQ's CI, and the rows that show it;
    None without SEQ or without rows with ages."""
    seq = _seq(evaluation.results)
    if seq is None or not math.isfinite(seq.success_ci[0]):
        return None
    floor = seq.success_ci[0]
    by_age: dict[int, list[ConfigResult]] = {}
    for r in evaluation.results:
        if math.isfinite(r.age_p50_frames) and math.isfinite(r.success_rate):
            by_age.setdefault(round(r.age_p50_frames), []).append(r)
    ages = sorted(by_age)
    if not ages:
        return None
    lost_at = next((a for a in ages if any(r.success_rate < floor for r in by_age[a])), None)
    kept_ages = [a for a in ages if lost_at is None or a < lost_at]
    kept_up_to = kept_ages[-1] if kept_ages else None
    kept = by_age[kept_up_to] if kept_up_to is not None else []
    at_lost = by_age[lost_at] if lost_at is not None else []
    return AgeTolerance(floor, kept_up_to, kept, lost_at, [r for r in at_lost if r.success_rate < floor],
                        [r for r in at_lost if r.success_rate >= floor])


def age_tolerance_sentence(t: AgeTolerance) -> str:
    ci = f"SEQ's 95% CI (≥ {t.floor:.2f})"
    clauses = []
    if t.kept_up_to is not None:
        clauses.append(f"success stays within {ci} for every configuration whose observations are at most "
                       f"{_frames(t.kept_up_to)} old (p50; at {_frames(t.kept_up_to)}: "
                       f"{', '.join(r.name for r in t.kept)})")
        ci = "it"
    if t.lost_at is None:
        clauses.append("none evaluated falls below it")
    else:
        spared = f", not for {_with_success(t.spared)}" if t.spared else ""
        clauses.append(f"at {_frames(t.lost_at)} success falls below {ci} for {_with_success(t.lost)}{spared}")
    return "Frame-stepped, " + "; ".join(clauses) + "."


def seq_age_sentence(seq: ConfigResult, t: AgeTolerance | None) -> str | None:
    """Where SEQ's real-time age sits against the frame-stepped tolerance; None outside what it covers."""
    if t is None or not math.isfinite(seq.age_p50_frames):
        return None
    age = seq.age_p50_frames
    if t.lost_at is not None and age >= t.lost_at:
        where = f"at or beyond {_frames(t.lost_at)}, the youngest age that loses success frame-stepped"
    elif t.kept_up_to is not None and age <= t.kept_up_to:
        where = f"within the {_frames(t.kept_up_to)} that keep success frame-stepped"
    elif t.kept_up_to is not None and t.lost_at is not None:
        where = (f"between the oldest age that keeps success frame-stepped ({_frames(t.kept_up_to)}) and the "
                 f"youngest that loses it ({_frames(t.lost_at)})")
    else:
        return None
    return f"SEQ's p50 age in these runs, {age:.1f} world frames, is {where}."


def headline_sentence(evaluation: Evaluation) -> str:
    """The Auras configuration with the most throughput among those keeping SEQ's success, or why none."""
    best = headline(evaluation)
    if best is None:
        if any(r.kind == "auras" for r in evaluation.results):
            return "no Auras configuration kept SEQ's success on these episodes"
        return "no Auras configuration was evaluated"
    speed = (f" at {best.throughput_vs_seq:.2f}x SEQ's decisions/s" if math.isfinite(best.throughput_vs_seq)
             else f" at {best.decisions_per_frame:.2f} decisions/frame (no wall-clock runs)")
    return (f"{best.name} keeps {100 * best.ratio_to_seq:.0f}% of SEQ's success "
            f"[95% CI {100 * best.ratio_ci[0]:.0f}–{100 * best.ratio_ci[1]:.0f}%]{speed}")


# ---- closed-loop tables ----------------------------------------------------------------------------

SUCCESS_HEAD = ("executor", "L", "success", "95% CI", "% of SEQ [95% CI]")


def _success_cells(r: ConfigResult) -> list[str]:
    """The cells every closed-loop table starts with: executor, L, success with its CI, % of SEQ with its CI."""
    return [r.name, str(r.in_flight), f"{r.success_rate:.2f}", f"{r.success_ci[0]:.2f}–{r.success_ci[1]:.2f}",
            f"{100 * r.ratio_to_seq:.0f}% [{100 * r.ratio_ci[0]:.0f}–{100 * r.ratio_ci[1]:.0f}]"]


def table(evaluation: Evaluation) -> str:
    """The paper's '% of original accuracy at N x throughput' table, as Markdown."""
    head = [*SUCCESS_HEAD, "decisions/frame", "decisions/s (wall)", "x SEQ", "age p50/p99 (frames)",
            "age p50/p99 (ms)", "interval CV", "time to success (frames)"]
    return markdown_table(head, [
        _success_cells(r) + [f"{r.decisions_per_frame:.2f}", f"{r.decisions_per_s:.1f}", f"{r.throughput_vs_seq:.2f}",
                             f"{r.age_p50_frames:.0f}/{r.age_p99_frames:.0f}",
                             f"{1000 * r.age_p50_s:.0f}/{1000 * r.age_p99_s:.0f}", f"{r.interval_cv:.2f}",
                             f"{r.mean_time_to_success:.1f}"]
        for r in evaluation.results])


def realtime_table(evaluation: RealTimeEvaluation) -> str:
    head = [*SUCCESS_HEAD, "decisions/s [95% CI]", "x SEQ", "age p50/p99 (ms)",
            f"age p50/p99 (world frames of {1000 * evaluation.world_period_s:.1f} ms)", "interval CV",
            "time to success (frames)", "world overruns/episode"]
    rows = []
    for rt in evaluation.results:
        r = rt.config
        rows.append(_success_cells(r) + [
            f"{rt.decisions_per_s:.1f} [{rt.decisions_per_s_ci[0]:.1f}–{rt.decisions_per_s_ci[1]:.1f}]",
            f"{rt.decisions_vs_seq:.2f}", f"{1000 * r.age_p50_s:.0f}/{1000 * r.age_p99_s:.0f}",
            f"{r.age_p50_frames:.1f}/{r.age_p99_frames:.1f}", f"{r.interval_cv:.2f}", f"{r.mean_time_to_success:.1f}",
            f"{rt.overruns_per_episode:.1f}"])
    return markdown_table(head, rows)


def chunk_table(rows: Sequence[tuple[str, ChunkSummary]]) -> str:
    """Seams, jerk and reaction (:mod:`auras_ros.eval.seams`) per labelled row: success with its 95%
    Wilson interval, time to success and reaction in world frames, seams in normalized command units."""
    head = ["executor / overlap", "episodes", "success [95% CI]", "time to success (frames)",
            "seam max ‖Δ‖ p50/p99", "jerk p99 (1/s³)", "reaction p50 (frames)", "reacted"]
    return markdown_table(head, [
        [label, str(c.episodes), f"{c.success_rate:.2f} [{c.success_ci[0]:.2f}–{c.success_ci[1]:.2f}]",
         _cell(c.time_to_success, 1), f"{_cell(c.seam_max_p50)}/{_cell(c.seam_max_p99)}", _cell(c.jerk_p99, 0),
         _cell(c.reaction_p50, 1), f"{c.reacted}/{c.reversals}" if c.reversals else "–"]
        for label, c in rows])


def alpha_table(evaluation: Evaluation, iterations: int | None = None) -> str:
    """The α sweep (paper §6.4): each Auras configuration's iterations per generation stage, success
    and throughput; SEQ first as the reference."""
    head = [*SUCCESS_HEAD, "iterations per stage (earliest → latest)", "time to success (frames)", "tracking error",
            "decisions/frame", "decisions/s (wall)", "x SEQ"]
    rows = []
    for r in evaluation.results:
        split = "–"
        if r.kind == "auras" and iterations is not None:
            split = "/".join(str(n) for n in skew_partition(iterations, r.executor.pp_generation, r.executor.alpha))
        rows.append(_success_cells(r) + [split, f"{r.mean_time_to_success:.1f}", f"{r.tracking_error:.3f}",
                                         f"{r.decisions_per_frame:.2f}", f"{r.decisions_per_s:.1f}",
                                         f"{r.throughput_vs_seq:.2f}"])
    return markdown_table(head, rows)


# ---- closed-loop plots -----------------------------------------------------------------------------

STEPPED_PLOTS = (("Success vs L", "success_vs_L"), ("Decisions/s vs L", "throughput_vs_L"),
                 ("Observation age at actuation", "observation_age"), ("SEQ vs Auras", "seq_vs_auras"))


def _family(r: ConfigResult) -> str:
    p = r.executor
    if p.kind != "auras":
        return p.kind
    private = ":private" if p.context_mode == "private" else ""
    return f"auras:f{p.fetch_offset}:a{p.alpha:g}{private}"


def _by_family(results: list[ConfigResult]) -> dict[str, list[ConfigResult]]:
    families: dict[str, list[ConfigResult]] = {}
    for r in results:
        if r.kind != "seq":
            families.setdefault(_family(r), []).append(r)
    return families


def _best_per_l(runs: list[ConfigResult], value: Callable[[ConfigResult], float]) -> dict[int, float]:
    """Several degree splits share one L: the best of them at each L."""
    best: dict[int, float] = {}
    for r in runs:
        v = value(r)
        if not math.isnan(v):
            best[r.in_flight] = max(best.get(r.in_flight, -math.inf), v)
    return best


def _plot_vs_l(evaluation: Evaluation, value: Callable[[ConfigResult], float], ylabel: str, path: Path) -> None:
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    ax.axhline(value(_seq(evaluation.results)), color="k", linestyle="--", label="seq")
    for family, runs in _by_family(evaluation.results).items():
        best = _best_per_l(runs, value)
        if best:
            ls = sorted(best)
            ax.plot(ls, [best[L] for L in ls], marker="o", label=family)
    ax.set_xlabel("requests in flight L")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def _plot_ages(evaluation: Evaluation, path: Path) -> None:
    picks = [r for r in evaluation.results if r.kind in ("seq", "par")]
    best = headline(evaluation)
    if best is not None:
        picks.append(best)
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    top = max((max(r.ages_frames) for r in picks if r.ages_frames), default=1)
    bins = np.arange(0.5, top + 1.5, 1.0)
    for r in picks:
        if r.ages_frames:
            ax.hist(r.ages_frames, bins=bins, histtype="step", linewidth=2, label=r.name, density=True)
    ax.set_xlabel("observation age at actuation (frames)")
    ax.set_ylabel("share of decisions")
    ax.legend(fontsize=7)
    _save(fig, path)


def _success_bars(ax: Any, names: list[str], results: Sequence[ConfigResult], colors: list[str]) -> None:
    ax.bar(names, [r.success_rate for r in results], color=colors,
           yerr=_error_bars([r.success_rate for r in results], [r.success_ci for r in results]))
    ax.set_ylabel("success rate (95% CI)")
    ax.set_ylim(0, 1.05)


def _plot_side_by_side(evaluation: Evaluation, path: Path) -> None:
    best = headline(evaluation)
    par = [r for r in evaluation.results if r.kind == "par"]
    picks = [_seq(evaluation.results)] + ([best] if best else []) + par[-1:]
    colors = ["gray", "tab:green", "tab:red"][: len(picks)]
    fig, axes = _pyplot().subplots(1, 2, figsize=(8, 3.5))
    names = [r.name for r in picks]
    _success_bars(axes[0], names, picks, colors)
    axes[1].bar(names, [r.decisions_per_s for r in picks], color=colors)
    axes[1].set_ylabel("decisions / s (wall, this machine)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7, rotation=15)
    _save(fig, path)


def _plot_alpha(evaluation: Evaluation, path: Path) -> None:
    fig, axes = _pyplot().subplots(1, 2, figsize=(8, 3.2))
    groups: dict[str, list[ConfigResult]] = {}
    for r in evaluation.results:
        if r.kind == "auras":
            p = r.executor
            groups.setdefault(f"auras:{p.pp_perception}+{p.pp_generation}:f{p.fetch_offset}", []).append(r)
    for label, runs in groups.items():
        runs = sorted(runs, key=lambda r: r.executor.alpha)
        alphas = [r.executor.alpha for r in runs]
        axes[0].plot(alphas, [r.mean_time_to_success for r in runs], marker="o", label=label)
        axes[1].plot(alphas, [r.decisions_per_s for r in runs], marker="o", label=label)
    axes[0].set_ylabel("time to success (frames)")
    axes[1].set_ylabel("decisions / s (wall)")
    for ax in axes:
        ax.set_xlabel("α (skew of denoising steps to later stages)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path, dpi=80)


def _realtime_colors(results: Sequence[ConfigResult]) -> list[str]:
    return ["gray" if r.kind == "seq" else "tab:green" if r.kind == "auras" else "tab:red" if r.kind == "par"
            else "tab:orange" for r in results]


def _plot_realtime_ages(ax: Any, rt: RealTimeEvaluation, names: list[str]) -> None:
    """Observation ages (ms) of SEQ, PAR and the Auras configuration with the best success (then decisions/s)."""
    results = [r.config for r in rt.results]
    period_ms = 1000 * rt.world_period_s
    top = max((percentile(r.ages_frames, 99) for r in results if r.ages_frames), default=1) * period_ms
    bins = np.linspace(0, top, 30)
    auras = [(r.success_rate, d.decisions_per_s, i) for i, (r, d) in enumerate(zip(results, rt.results, strict=False))
             if r.kind == "auras"]
    shown = {i for i, r in enumerate(results) if r.kind in ("seq", "par")} | ({max(auras)[2]} if auras else set())
    for i, (r, name) in enumerate(zip(results, names, strict=False)):
        if i in shown and r.ages_frames:
            ages = np.asarray(r.ages_frames) * period_ms
            ax.hist(ages[ages <= top], bins=bins, histtype="step", linewidth=1.5, label=name, density=True)
    ax.set_xlabel("observation age at actuation (ms, wall)")
    ax.set_ylabel("density")
    ax.legend(fontsize=6)


def _plot_realtime(rt: RealTimeEvaluation, path: Path) -> None:
    """Real-time: success (95% CI), decisions/s (95% CI) and observation age (ms) per method."""
    results = [r.config for r in rt.results]
    names = [r.name.replace(":a0", "").replace("auras:", "") for r in results]
    colors = _realtime_colors(results)
    fig, axes = _pyplot().subplots(1, 3, figsize=(12, 3.6))
    _success_bars(axes[0], names, results, colors)
    axes[1].bar(names, [r.decisions_per_s for r in rt.results], color=colors,
                yerr=_error_bars([r.decisions_per_s for r in rt.results], [r.decisions_per_s_ci for r in rt.results]))
    axes[1].set_ylabel("decisions / s (95% CI)")
    _plot_realtime_ages(axes[2], rt, names)
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=6, rotation=30)
    _save(fig, path, dpi=80)


# ---- the closed-loop report ------------------------------------------------------------------------


def _plot_file(stem: str, name: str) -> str:
    return f"{stem}_{name}.png"


def _stepped_section(evaluation: Evaluation, command: str | None) -> list[str]:
    task, stem = evaluation.task, evaluation.policy
    measured = any(math.isfinite(r.decisions_per_s) for r in evaluation.results)
    intro = _sentences(
        f"Task: catch and hold a moving target (MuJoCo, {task['image_size']}px top camera, frame = "
        f"{1000 * task['frame_period']:.0f} ms of world time). Frame-stepped: the world steps once per pipeline "
        f"frame. {len(evaluation.seeds)} seeded episodes per method {_seed_span(evaluation.seeds)}, the same for "
        "every method.",
        "Decisions/s: separate wall-clock runs of the same agent, the median of interleaved repeats."
        if measured else None,
        machine_sentence(evaluation.machine, evaluation.threads))
    tolerance = age_tolerance(evaluation)
    lines = [f"# Closed-loop evaluation: {evaluation.policy} policy", "", intro, "", table(evaluation), "",
             f"**Headline**: {headline_sentence(evaluation)}.", ""]
    lines += [age_tolerance_sentence(tolerance), ""] if tolerance is not None else []
    lines += _command(command)
    for title, name in STEPPED_PLOTS:
        lines += [f"## {title}", "", f"![{title}]({_plot_file(stem, name)})", ""]
    return lines


def _realtime_text(rt: RealTimeEvaluation, stepped: Evaluation) -> str:
    lat = rt.seq_latency_ms
    seq = _seq(r.config for r in rt.results)
    tolerance = age_tolerance(stepped)
    return _sentences(
        f"The world steps every {1000 * rt.world_period_s:.1f} ms of wall time (speed {rt.speed:g}: "
        f"{1000 * rt.task['frame_period']:.0f} ms world frames played {rt.speed:g}x faster than real time) and "
        "renders its camera at that rate; each executor runs on the wall clock, takes the newest camera frame, "
        "and each decision applies when it arrives.",
        f"SEQ's decision latency measured before the runs: p50 {lat['p50']:.1f} ms (perception "
        f"{lat['perception_p50']:.1f} ms + generation {lat['generation_p50']:.1f} ms), p99 {lat['p99']:.1f} ms.",
        f"In the runs SEQ acted on images p50 {seq.age_p50_frames:.1f} / p99 {seq.age_p99_frames:.1f} world frames "
        "old." if seq is not None else None,
        age_tolerance_sentence(tolerance) if tolerance is not None else None,
        seq_age_sentence(seq, tolerance) if seq is not None else None,
        f"{len(rt.seeds)} seeded episodes {_seed_span(rt.seeds)}; each seed runs every method back to back in a "
        "shuffled order, so SEQ and each configuration share the machine's conditions.",
        machine_sentence(rt.machine, rt.threads),
        "% of SEQ: paired bootstrap over seeds; decisions/s: mean of per-episode rates with a bootstrap CI, x SEQ "
        "the mean per-seed ratio; ages are sensor stamp to the decision's arrival at the world.")


def _realtime_section(rt: RealTimeEvaluation, stepped: Evaluation, command: str | None) -> list[str]:
    return ["## Real time: the world runs in wall time", "", _realtime_text(rt, stepped), "", realtime_table(rt), "",
            f"![Real time]({_plot_file(stepped.policy, 'realtime')})", "", *_command(command)]


def _alpha_section(alpha: Evaluation, iterations: int | None, command: str | None, stem: str) -> list[str]:
    intro = ("α skews the denoising steps to the later generation stages, which read fresher percepts (paper §6.4): "
             "stage i gets a share ∝ e^{iα}. Same seeded episodes as SEQ, frame-stepped; decisions/s from separate "
             "wall-clock runs.")
    return ["## α sweep (frame-stepped)", "", _sentences(intro, machine_sentence(alpha.machine, alpha.threads)), "",
            alpha_table(alpha, iterations), "", f"![alpha sweep]({_plot_file(stem, 'alpha')})", "",
            *_command(command)]


def _tuner_section(tuner: str) -> list[str]:
    return ["## Tuner (paper §4.3.2)", "",
            "Throughput of every grid point by a short wall-clock run (one measurement each, against one SEQ "
            "measurement, so as noisy as the machine's load), then the seeded frame-stepped episodes for those "
            "meeting the target; the answer is the most accurate of them, fastest first.", "",
            "```", tuner.rstrip(), "```", ""]


def render_report(evaluation: Evaluation, realtime: RealTimeEvaluation | None = None, alpha: Evaluation | None = None,
                  iterations: int | None = None, commands: dict[str, str] | None = None,
                  tuner: str | None = None) -> str:
    """The closed-loop report's Markdown (the plots it shows are drawn by :func:`draw_plots`)."""
    commands = commands or {}
    lines = _stepped_section(evaluation, commands.get("frame_stepped"))
    if realtime is not None:
        lines += _realtime_section(realtime, evaluation, commands.get("realtime"))
    if alpha is not None:
        lines += _alpha_section(alpha, iterations, commands.get("alpha"), evaluation.policy)
    if tuner is not None:
        lines += _tuner_section(tuner)
    return "\n".join(lines)


def draw_plots(evaluation: Evaluation, directory: Path, realtime: RealTimeEvaluation | None = None,
               alpha: Evaluation | None = None) -> None:
    def path(name: str) -> Path:
        return directory / _plot_file(evaluation.policy, name)

    _plot_vs_l(evaluation, lambda r: r.success_rate, "success rate", path("success_vs_L"))
    _plot_vs_l(evaluation, lambda r: r.decisions_per_s, "decisions / s (wall)", path("throughput_vs_L"))
    _plot_ages(evaluation, path("observation_age"))
    _plot_side_by_side(evaluation, path("seq_vs_auras"))
    if realtime is not None:
        _plot_realtime(realtime, path("realtime"))
    if alpha is not None:
        _plot_alpha(alpha, path("alpha"))


def write_report(evaluation: Evaluation, directory: Path, realtime: RealTimeEvaluation | None = None,
                 alpha: Evaluation | None = None,
                 iterations: int | None = None, commands: dict[str, str] | None = None) -> Path:
    """The frame-stepped report; with ``realtime`` (a RealTimeEvaluation) and ``alpha`` (a frame-stepped
    α sweep) their sections too, and the tuner's output where ``{policy}_tuner.txt`` lies beside it.
    ``commands``: the command line that produced each part, shown."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    draw_plots(evaluation, directory, realtime, alpha)
    tuner = directory / f"{evaluation.policy}_tuner.txt"
    path = directory / f"{evaluation.policy}_report.md"
    write_text_atomically(path, render_report(evaluation, realtime, alpha, iterations, commands,
                                              tuner.read_text() if tuner.exists() else None))
    return path


# ---- the report of actions scored against a recorded reference -------------------------------------


def _throughput(evaluation: BagEvaluation) -> tuple[list[str], dict[str, list[str]]]:
    """Decisions/s per run: one number, or with repeat rates (interleaved runs) the median [min–max] and
    the ratio to the first run's executor, repeat by repeat."""
    runs = evaluation.runs
    base, first = next(iter(runs.items()))
    if first.rates is None:
        return ["decisions/s"], {name: [rate_text(run.decisions_per_s, run.actions)] for name, run in runs.items()}
    return (["decisions/s", f"x {base}"],
            {name: [str(Spread.of(run.rates)), str(Spread.of([r / b for r, b in zip(run.rates, first.rates, strict=False)]))]
             for name, run in runs.items()})


def _bag_intro(evaluation: BagEvaluation) -> str:
    ref = evaluation.reference
    base, first = next(iter(evaluation.runs.items()))
    compared = ", ".join(f"[{i}] {p} x {s:g}" for i, (p, s) in enumerate(zip(ref.fields, ref.scale, strict=False)) if p)
    rates = (f"Decisions/s are wall time, the median [min–max] of {len(first.rates)} interleaved runs, and x {base} "
             f"the ratio to {base}'s, run by run." if first.rates is not None else "Decisions/s are wall time.")
    return _sentences(
        f"Reference: {ref.topic} ({ref.type}, {ref.samples} samples); action index i is compared with {compared} at "
        "the action's observation stamp (newest reference at or before it).",
        f"Model: {evaluation.model}." if evaluation.model else None,
        rates, "Ages are on the clock the actions were decided on (bag time on replay).",
        f"{evaluation.bad_images} undecodable camera images were skipped." if evaluation.bad_images else None,
        f"{evaluation.actions_missed} actions (by request id) never arrived and are left out."
        if evaluation.actions_missed else None,
        machine_sentence(evaluation.machine))


def _bag_table(evaluation: BagEvaluation) -> str:
    dims = next(iter(evaluation.runs.values())).per_dimension
    throughput_head, throughput = _throughput(evaluation)
    head = ["executor", "actions", *throughput_head, "age p50 ms", "age p99 ms", "error mean", "error at decision",
            *(f"MAE [{d.index}] {d.field}" for d in dims)]
    return markdown_table(head, [
        [name, str(s.actions), *throughput[name], _cell(s.age_p50_s * 1000, 1), _cell(s.age_p99_s * 1000, 1),
         _cell(s.error_mean), _cell(s.error_at_decision_mean), *(_cell(d.mae) for d in s.per_dimension)]
        for name, s in evaluation.runs.items()])


def _age_section(name: str, run: ScoredRun, frame_period: float) -> list[str]:
    rows = [[str(b.age_frames), f"{b.age_s * 1000:.0f}", str(b.actions), f"{b.error_mean:.3f}", f"{b.error_p50:.3f}",
             f"{b.error_p90:.3f}"] for b in run.by_age]
    return ["", f"## {name}: error by observation age (frames of {frame_period * 1000:g} ms)", "",
            f"{run.unmatched} actions decided before any reference sample were not scored.", "",
            markdown_table(["age (frames)", "age (ms)", "actions", "error mean", "error p50", "error p90"], rows)]


def bag_markdown(evaluation: BagEvaluation) -> str:
    """The side-by-side table of every run, then each run's error by observation age."""
    lines = [f"# Actions against the recorded reference ({evaluation.source})", "", _bag_intro(evaluation), "",
             _bag_table(evaluation)]
    for name, run in evaluation.runs.items():
        lines += _age_section(name, run, evaluation.frame_period)
    return "\n".join(lines + ["", "![error vs age](errors.png)", ""])


def _plot_errors(evaluation: BagEvaluation, path: Path) -> None:
    period = evaluation.frame_period
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    for k, (name, run) in enumerate(evaluation.runs.items()):
        ax.scatter([s.age / period for s in run.scored], [s.error for s in run.scored], s=8, alpha=0.3, color=f"C{k}")
        ax.plot([b.age_frames for b in run.by_age], [b.error_mean for b in run.by_age], "o-", color=f"C{k}", label=name)
    ax.set_xlabel(f"observation age at the decision (frames of {period * 1000:g} ms)")
    ax.set_ylabel("|action - reference|")
    ax.set_title("action error against the recorded reference vs observation age")
    ax.legend()
    _save(fig, path)


def write_bag_report(evaluation: BagEvaluation, directory: Path) -> Path | None:
    """evaluation.json in ``directory``, and when the evaluation is ok report.md and errors.png (the
    report's path): with nothing scored only the JSON, whose ``ok: false`` and ``reason`` say why, never
    a report that looks like a result."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "evaluation.json", evaluation, strict=True)
    if not evaluation.ok:
        return None
    _plot_errors(evaluation, directory / "errors.png")
    path = directory / "report.md"
    write_text_atomically(path, bag_markdown(evaluation))
    return path


def main(argv: list[str] | None = None) -> int:
    """Re-render the report from the JSON the evaluation commands wrote (no episodes are run)."""
    import argparse

    from auras_ros.eval.policies import load_policy

    parser = argparse.ArgumentParser(description="Write the Markdown + PNG report from evaluation JSON.")
    parser.add_argument("--policy", default="diffusion")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    d = args.results
    evaluation = load_evaluation(d / f"{args.policy}.json")
    realtime = load_realtime(d / f"{args.policy}_realtime.json") if (d / f"{args.policy}_realtime.json").exists() else None
    alpha = load_evaluation(d / f"{args.policy}_alpha.json") if (d / f"{args.policy}_alpha.json").exists() else None
    iterations = load_policy(args.policy).generation_iterations if alpha is not None else None
    commands_file = d / f"{args.policy}_commands.json"
    commands = json.loads(commands_file.read_text()) if commands_file.exists() else None
    try:
        print(f"report: {write_report(evaluation, d, realtime, alpha, iterations, commands)}")
    except OSError as error:  # a full disk: one line, no partial file
        return write_failed("report", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
