"""The evaluation report: a Markdown table and matplotlib plots (PNG, Agg backend, no display)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from auras_ros.core.partition import skew_partition  # noqa: E402
from auras_ros.core.stats import percentile  # noqa: E402
from auras_ros.eval.results import (ConfigResult, Evaluation, RealTimeEvaluation, headline,  # noqa: E402
                                    load_evaluation, load_realtime)


def success_cells(r: ConfigResult) -> str:
    """The table cells every report shares: executor, L, success with its CI, % of SEQ with its CI."""
    return (f"| {r.name} | {r.in_flight} | {r.success_rate:.2f} | {r.success_ci[0]:.2f}–{r.success_ci[1]:.2f} "
            f"| {100 * r.ratio_to_seq:.0f}% [{100 * r.ratio_ci[0]:.0f}–{100 * r.ratio_ci[1]:.0f}] ")


def table(evaluation: Evaluation) -> str:
    """The paper's '% of original accuracy at N x throughput' table, as Markdown."""
    lines = [
        "| executor | L | success | 95% CI | % of SEQ [95% CI] | decisions/frame | decisions/s (wall) | x SEQ | age p50/p99 (frames) | age p50/p99 (ms) | interval CV | time to success (frames) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in evaluation.results:
        lines.append(
            success_cells(r) + f"| {r.decisions_per_frame:.2f} | {r.decisions_per_s:.1f} | {r.throughput_vs_seq:.2f} "
            f"| {r.age_p50_frames:.0f}/{r.age_p99_frames:.0f} | {1000 * r.age_p50_s:.0f}/{1000 * r.age_p99_s:.0f} "
            f"| {r.interval_cv:.2f} | {r.mean_time_to_success:.1f} |")
    return "\n".join(lines)


def realtime_table(evaluation: RealTimeEvaluation) -> str:
    period_ms = 1000 * evaluation.world_period_s
    lines = [
        "| executor | L | success | 95% CI | % of SEQ [95% CI] | decisions/s [95% CI] | x SEQ | "
        f"age p50/p99 (ms) | age p50/p99 (world frames of {period_ms:.1f} ms) | interval CV | "
        "time to success (frames) | world overruns/episode |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rt in evaluation.results:
        r = rt.config
        lines.append(
            success_cells(r) + f"| {rt.decisions_per_s:.1f} [{rt.decisions_per_s_ci[0]:.1f}–{rt.decisions_per_s_ci[1]:.1f}] "
            f"| {rt.decisions_vs_seq:.2f} | {1000 * r.age_p50_s:.0f}/{1000 * r.age_p99_s:.0f} "
            f"| {r.age_p50_frames:.1f}/{r.age_p99_frames:.1f} | {r.interval_cv:.2f} "
            f"| {r.mean_time_to_success:.1f} | {rt.overruns_per_episode:.1f} |")
    return "\n".join(lines)


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


def _plot_vs_l(evaluation: Evaluation, value, ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    seq = next(r for r in evaluation.results if r.kind == "seq")
    ax.axhline(value(seq), color="k", linestyle="--", label="seq")
    for family, runs in _by_family(evaluation.results).items():
        # Several degree splits share one L: plot the best of them at that L.
        best: dict[int, float] = {}
        for r in runs:
            v = value(r)
            if not math.isnan(v):
                best[r.in_flight] = max(best.get(r.in_flight, -math.inf), v)
        if best:
            ls = sorted(best)
            ax.plot(ls, [best[l] for l in ls], marker="o", label=family)
    ax.set_xlabel("requests in flight L")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_ages(evaluation: Evaluation, path: Path) -> None:
    picks = [r for r in evaluation.results if r.kind in ("seq", "par")]
    best = headline(evaluation)
    if best is not None:
        picks.append(best)
    fig, ax = plt.subplots(figsize=(6, 4))
    top = max((max(r.ages_frames) for r in picks if r.ages_frames), default=1)
    bins = np.arange(0.5, top + 1.5, 1.0)
    for r in picks:
        if r.ages_frames:
            ax.hist(r.ages_frames, bins=bins, histtype="step", linewidth=2, label=r.name, density=True)
    ax.set_xlabel("observation age at actuation (frames)")
    ax.set_ylabel("share of decisions")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_side_by_side(evaluation: Evaluation, path: Path) -> None:
    seq = next(r for r in evaluation.results if r.kind == "seq")
    best = headline(evaluation)
    par = [r for r in evaluation.results if r.kind == "par"]
    picks = [seq] + ([best] if best else []) + par[-1:]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    names = [r.name for r in picks]
    axes[0].bar(names, [r.success_rate for r in picks],
                yerr=np.array([[r.success_rate - r.success_ci[0], r.success_ci[1] - r.success_rate] for r in picks]).T,
                color=["gray", "tab:green", "tab:red"][: len(picks)])
    axes[0].set_ylabel("success rate (95% CI)")
    axes[0].set_ylim(0, 1.05)
    axes[1].bar(names, [r.decisions_per_s for r in picks], color=["gray", "tab:green", "tab:red"][: len(picks)])
    axes[1].set_ylabel("decisions / s (wall, this machine)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7, rotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def alpha_table(evaluation: Evaluation, iterations: int | None = None) -> str:
    """The α sweep (paper §6.4): each Auras configuration's iterations per generation stage, success
    and throughput; SEQ first as the reference."""
    lines = [
        "| executor | L | success | 95% CI | % of SEQ [95% CI] | iterations per stage (earliest → latest) | time to success (frames) | tracking error | decisions/frame | decisions/s (wall) | x SEQ |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in evaluation.results:
        split = "–"
        if r.kind == "auras" and iterations is not None:
            split = "/".join(str(n) for n in skew_partition(iterations, r.executor.pp_generation, r.executor.alpha))
        lines.append(
            success_cells(r) + f"| {split} | {r.mean_time_to_success:.1f} | {r.tracking_error:.3f} | {r.decisions_per_frame:.2f} "
            f"| {r.decisions_per_s:.1f} | {r.throughput_vs_seq:.2f} |")
    return "\n".join(lines)


def _plot_alpha(evaluation: Evaluation, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
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
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_realtime(rt: RealTimeEvaluation, path: Path) -> None:
    """Real-time: success (95% CI), decisions/s (95% CI) and observation age (ms) per method."""
    results = [r.config for r in rt.results]
    names = [r.name.replace(":a0", "").replace("auras:", "") for r in results]
    colors = ["gray" if r.kind == "seq" else "tab:green" if r.kind == "auras" else "tab:red" if r.kind == "par"
              else "tab:orange" for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].bar(names, [r.success_rate for r in results], color=colors,
                yerr=np.array([[r.success_rate - r.success_ci[0], r.success_ci[1] - r.success_rate] for r in results]).T)
    axes[0].set_ylabel("success rate (95% CI)")
    axes[0].set_ylim(0, 1.05)
    axes[1].bar(names, [r.decisions_per_s for r in rt.results], color=colors,
                yerr=np.array([[r.decisions_per_s - r.decisions_per_s_ci[0], r.decisions_per_s_ci[1] - r.decisions_per_s]
                               for r in rt.results]).T)
    axes[1].set_ylabel("decisions / s (95% CI)")
    period_ms = 1000 * rt.world_period_s
    top = max((percentile(r.ages_frames, 99) for r in results if r.ages_frames), default=1) * period_ms
    bins = np.linspace(0, top, 30)
    auras = [(r.success_rate, d.decisions_per_s, i) for i, (r, d) in enumerate(zip(results, rt.results)) if r.kind == "auras"]
    shown = {i for i, r in enumerate(results) if r.kind in ("seq", "par")} | ({max(auras)[2]} if auras else set())
    for i, (r, name) in enumerate(zip(results, names)):
        if i in shown and r.ages_frames:
            ages = np.asarray(r.ages_frames) * period_ms
            axes[2].hist(ages[ages <= top], bins=bins, histtype="step", linewidth=1.5, label=name, density=True)
    axes[2].set_xlabel("observation age at actuation (ms, wall)")
    axes[2].set_ylabel("density")
    axes[2].legend(fontsize=6)
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=6, rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(evaluation: Evaluation, directory: Path, realtime: RealTimeEvaluation | None = None,
                 alpha: Evaluation | None = None,
                 iterations: int | None = None, commands: dict[str, str] | None = None) -> Path:
    """The frame-stepped report; with ``realtime`` (a RealTimeEvaluation) and ``alpha`` (a frame-stepped
    α sweep) their sections too. ``commands``: the command line that produced each part, shown."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = evaluation.policy
    plots = {
        "success_vs_L": directory / f"{stem}_success_vs_L.png",
        "throughput_vs_L": directory / f"{stem}_throughput_vs_L.png",
        "ages": directory / f"{stem}_observation_age.png",
        "seq_vs_auras": directory / f"{stem}_seq_vs_auras.png",
    }
    _plot_vs_l(evaluation, lambda r: r.success_rate, "success rate", plots["success_vs_L"])
    _plot_vs_l(evaluation, lambda r: r.decisions_per_s, "decisions / s (wall)", plots["throughput_vs_L"])
    _plot_ages(evaluation, plots["ages"])
    _plot_side_by_side(evaluation, plots["seq_vs_auras"])
    best = headline(evaluation)
    lines = [
        f"# Closed-loop evaluation: {evaluation.policy} policy",
        "",
        f"Task: catch and hold a moving target (MuJoCo, {evaluation.task['image_size']}px top camera, "
        f"frame = {1000 * evaluation.task['frame_period']:.0f} ms of world time). Frame-stepped: the world "
        f"steps once per pipeline frame. {len(evaluation.seeds)} seeded episodes per method "
        f"(seeds {evaluation.seeds[0]}..{evaluation.seeds[-1]}), the same for every method. "
        f"Decisions/s: a separate wall-clock run of the same agent on this machine "
        f"(torch threads = {evaluation.threads}).",
        "",
        table(evaluation),
        "",
    ]
    if best is not None:
        lines += [f"**Headline**: {best.name} keeps {100 * best.ratio_to_seq:.0f}% of SEQ's success "
                  f"[95% CI {100 * best.ratio_ci[0]:.0f}–{100 * best.ratio_ci[1]:.0f}%] at "
                  f"{best.throughput_vs_seq:.2f}x SEQ's decisions/s.", ""]
    else:
        lines += ["**Headline**: no Auras configuration kept SEQ's success on these episodes.", ""]
    commands = commands or {}
    if "frame_stepped" in commands:
        lines += [f"Command: `{commands['frame_stepped']}`", ""]
    for title, key in (("Success vs L", "success_vs_L"), ("Decisions/s vs L", "throughput_vs_L"),
                       ("Observation age at actuation", "ages"), ("SEQ vs Auras", "seq_vs_auras")):
        lines += [f"## {title}", "", f"![{title}]({plots[key].name})", ""]
    if realtime is not None:
        rt_plot = directory / f"{stem}_realtime.png"
        _plot_realtime(realtime, rt_plot)
        lat = realtime.seq_latency_ms
        seq_rt = next(r.config for r in realtime.results if r.config.kind == "seq")
        lines += [
            "## Real time: the world runs in wall time",
            "",
            f"The world steps every {1000 * realtime.world_period_s:.1f} ms of wall time (speed "
            f"{realtime.speed:g}: {1000 * realtime.task['frame_period']:.0f} ms world frames played "
            f"{realtime.speed:g}x faster than real time) and renders its camera at that rate; each executor "
            f"runs on the wall clock, takes the newest camera frame, and each decision applies when it "
            f"arrives. SEQ's decision latency measured on this machine before the runs: p50 {lat['p50']:.1f} ms "
            f"(perception {lat['perception_p50']:.1f} ms + generation {lat['generation_p50']:.1f} ms), p99 "
            f"{lat['p99']:.1f} ms; in the runs SEQ acted on images p50 {seq_rt.age_p50_frames:.1f} / p99 "
            f"{seq_rt.age_p99_frames:.1f} world frames old (camera wait + latency + other jobs). The speed is "
            f"chosen so that this sits at the edge of what the task tolerates: frame-stepped, ages of 2 frames "
            f"keep full success and 3 frames lose most of it (par:3, dec:2 in the table above). "
            f"{len(realtime.seeds)} seeded episodes "
            f"(seeds {realtime.seeds[0]}..{realtime.seeds[-1]}); each seed runs every method back to back in a "
            f"shuffled order, so SEQ and each configuration share the machine's conditions (2 cores shared "
            f"with other jobs, e.g. a training run, during these runs). % of SEQ: paired bootstrap over seeds; "
            f"decisions/s: mean of per-episode rates with a bootstrap CI, x SEQ the mean per-seed ratio; ages "
            f"are sensor stamp to the decision's arrival at the world.",
            "",
            realtime_table(realtime),
            "",
            f"![Real time]({rt_plot.name})",
            "",
        ]
        if "realtime" in commands:
            lines += [f"Command: `{commands['realtime']}`", ""]
    if alpha is not None:
        alpha_plot = directory / f"{stem}_alpha.png"
        _plot_alpha(alpha, alpha_plot)
        lines += [
            "## α sweep (frame-stepped)",
            "",
            "α skews the denoising steps to the later generation stages, which read fresher percepts "
            "(paper §6.4): stage i gets a share ∝ e^{iα}. Same seeded episodes as SEQ, frame-stepped; "
            "decisions/s from separate wall-clock runs on this machine.",
            "",
            alpha_table(alpha, iterations),
            "",
            f"![alpha sweep]({alpha_plot.name})",
            "",
        ]
        if "alpha" in commands:
            lines += [f"Command: `{commands['alpha']}`", ""]
    tuner = directory / f"{stem}_tuner.txt"
    if tuner.exists():
        lines += ["## Tuner (paper §4.3.2)", "",
                  "Throughput of every grid point by a short wall-clock run (one measurement each, against one "
                  "SEQ measurement: noisy on a shared machine), then the seeded frame-stepped episodes for "
                  "those meeting the target; the answer is the most accurate of them, fastest first.", "",
                  "```", tuner.read_text().rstrip(), "```", ""]
    path = directory / f"{stem}_report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> None:
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
    print(f"report: {write_report(evaluation, d, realtime, alpha, iterations, commands)}")


if __name__ == "__main__":
    main()
