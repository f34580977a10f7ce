"""The evaluation report: a Markdown table and matplotlib plots (PNG, Agg backend, no display)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from auras_ros.eval.closed_loop import ConfigResult, Evaluation, headline, table  # noqa: E402


def _family(r: ConfigResult) -> str:
    if r.kind != "auras":
        return r.kind.upper()
    p = r.pipeline
    private = " private" if p["context_mode"] == "private" else ""
    return f"Auras f{p['fetch_offset']} a{p['alpha']:g}{private}"


def _by_family(results: list[ConfigResult]) -> dict[str, list[ConfigResult]]:
    families: dict[str, list[ConfigResult]] = {}
    for r in results:
        if r.kind != "seq":
            families.setdefault(_family(r), []).append(r)
    return families


def _plot_vs_l(evaluation: Evaluation, value, ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    seq = next(r for r in evaluation.results if r.kind == "seq")
    ax.axhline(value(seq), color="k", linestyle="--", label="SEQ")
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


def write_report(evaluation: Evaluation, directory: Path) -> Path:
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
    for title, key in (("Success vs L", "success_vs_L"), ("Decisions/s vs L", "throughput_vs_L"),
                       ("Observation age at actuation", "ages"), ("SEQ vs Auras", "seq_vs_auras")):
        lines += [f"## {title}", "", f"![{title}]({plots[key].name})", ""]
    path = directory / f"{stem}_report.md"
    path.write_text("\n".join(lines))
    return path
