"""The chunk-execution table (issue #18 item 4): executors × overlap policies in the real-time world, with
the target reversing once per episode, measured for success, seams, jerk and reaction time.

    python -m auras_ros.eval.chunk_table --policy diffusion --episodes 30 --speeds 1 3 \\
        [--rows seq@replace async@replace auras:1+4:f0:a0@ensemble ...] [--out docs/results/chunks_realtime.md]

A row is ``EXECUTOR@OVERLAP`` (:class:`auras_ros.core.spec.Row`: an :class:`ExecutorSpec` text and a
:data:`core.chunks.OVERLAPS` name; ``async`` plays under the aggregate its spec names, whatever the
overlap; the demo reads the same rows). A
row this checkout cannot run (an executor kind ``core.spec`` does not parse, an overlap ``core.chunks``
does not have) is skipped with a note in the table's file, so the same command runs before and after
those land. **Pairing**: at each speed every seed runs every row back to back in a seeded shuffled
order (the machine's conditions shared; the same reversal frame on a seed for every row). Seeds start
at 70000: the checkpoints' demonstrations use seeds 10000.., the tuner and the other evaluations 0..
and 50000... Progress and the time left go to stderr; an episode lasts at most ``max_frames`` world
frames, ``max_frames * frame_period / speed`` wall seconds, which bounds the run before it starts.

Chunk timing defaults to ``observation`` (row k of a chunk is due k periods after its observation was
sensed, late rows skipped: issue #18's time-aligned execution, and the timing ``inpaint`` guides its
chunks by); ``--chunk-timing arrival`` plays row 0 on arrival as ``eval.realtime`` does by default.

``--noise-scales 1 0`` plays every row at each noise scale of the diffusion agent
(:func:`auras_ros.core.stages.set_noise_scale`: each request's initial noise x_T scaled; 0 = deterministic
sampling), interleaved within a seed as the rows are, each labelled with its scale ("auras:1+4:f0:a0 @
replace, noise 0") when more than one is given. The default, 1 alone, is the table as before.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from auras_ros.core.errors import ConfigError
from auras_ros.core.spec import Row, parse_row
from auras_ros.core.stages import Agent, chunk_rows, inpaints, set_noise_scale
from auras_ros.eval.actuation import TIMINGS
from auras_ros.eval.cli import noise_scale_argument
from auras_ros.eval.episodes import measure_seq_latency, play_paired, warm_up
from auras_ros.eval.files import write_failed, write_text_atomically
from auras_ros.eval.policies import add_policy_arguments, load_policy
from auras_ros.eval.report import chunk_table, machine_sentence
from auras_ros.eval.results import Machine, RealTimeEpisode, chunk_summary, device_of
from auras_ros.eval.task import CatchTask
from auras_ros.eval.task_config import VARIANTS, TaskConfig

AURAS = "auras:1+4:f0:a0"
DEFAULT_ROWS = ("seq@replace", "async", f"{AURAS}@replace", f"{AURAS}@ensemble", f"{AURAS}@blend",
                f"{AURAS}@inpaint")
HELD_OUT_SEED = 70_000
OUT = Path("docs/results/chunks_realtime.md")


def runnable_rows(texts: list[str]) -> tuple[list[Row], list[str]]:
    """The rows this checkout can run, and a note for each one it can not."""
    rows, notes = [], []
    for text in texts:
        try:
            rows.append(parse_row(text))
        except ConfigError as error:
            notes.append(f"row `{text}` skipped: {error}")
    return rows, notes


@dataclass(frozen=True)
class TableRow:
    """A row of the table: a :class:`Row` played at one noise scale of the agent, and its label."""

    row: Row
    noise_scale: float
    label: str


def table_rows(rows: list[Row], noise_scales: list[float]) -> list[TableRow]:
    """Each row at each noise scale, a row's scales next to each other; the label names the scale only
    when more than one is played (one scale: the rows' own labels, the table as before)."""
    return [TableRow(row, scale, row.label if len(noise_scales) == 1 else f"{row.label}, noise {scale:g}")
            for row in rows for scale in noise_scales]


def run_speed(agent: Agent, rows: list[TableRow], seeds: list[int], speed: float, task: CatchTask,
              progress: "Progress", timing: str) -> tuple[dict, list[list[RealTimeEpisode]]]:
    """Every row on every seed at ``speed`` (interleaved, seeded order); SEQ's latency measured first.
    The runs follow the rows' order."""
    latency = measure_seq_latency(agent, [task.reset(s).data for s in seeds[:4]])
    rows_of_chunk = chunk_rows(agent)
    played = [(r.row.spec, r.row.overlap, r.noise_scale) for r in rows]
    warm_up(agent, played, task, rows_of_chunk, speed, timing)
    runs: list[list[RealTimeEpisode]] = [[] for _ in rows]

    def record(i: int, seed: int, run: RealTimeEpisode) -> None:
        runs[i].append(run)
        progress.done(f"speed {speed:g} seed {seed} {rows[i].label}: {'success' if run.episode.success else 'fail'}")

    # Each speed its own order, seeded by the first seed and the speed.
    play_paired(agent, played, task, seeds, rows_of_chunk, speed, timing, seeds[0] + int(1000 * speed), record)
    return latency, runs


def noise_sentence(noise_scales: list[float]) -> str:
    """The table's note on the noise scales it was played at (none at the default, 1 alone)."""
    return (f"Noise scale{'s' if len(noise_scales) > 1 else ''} {', '.join(f'{s:g}' for s in noise_scales)}: "
            "every request's initial noise x_T (and DDPM's per-step noise) scaled by it (1 = as trained, "
            "0 = deterministic sampling; `core.stages.set_noise_scale`).")


class Progress:
    """Episodes done / total on stderr, with the wall time so far and the time left at the pace so far."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.started = time.monotonic()

    def done(self, what: str) -> None:
        self.count += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.count * (self.total - self.count)
        print(f"[{self.count}/{self.total}] {what} ({elapsed:.0f} s, ~{left:.0f} s left)", file=sys.stderr, flush=True)


def speed_section(speed: float, latency: dict, config: TaskConfig, rows: list[TableRow],
                  runs: list[list[RealTimeEpisode]]) -> str:
    period_ms = 1000 * config.frame_period / speed
    summaries = [(row.label, s) for row, run in zip(rows, runs, strict=True) if (s := chunk_summary(run)) is not None]
    return "\n".join([
        f"## Speed {speed:g}", "",
        f"SEQ decision latency on this machine: p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms; "
        f"world frame {period_ms:.1f} ms wall (speed {speed:g}).", "",
        chunk_table(summaries), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_policy_arguments(parser)
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), help="EXECUTOR@OVERLAP per row")
    parser.add_argument("--episodes", type=int, default=30, help="paired episodes per row and speed")
    parser.add_argument("--speeds", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="first episode seed (held out)")
    parser.add_argument("--variant", choices=VARIANTS, default="reverse")
    parser.add_argument("--chunk-timing", choices=TIMINGS, default="observation",
                        help="observation: row k due k periods after its observation (late rows skipped); "
                             "arrival: row 0 plays on arrival")
    parser.add_argument("--noise-scales", type=noise_scale_argument, nargs="+", default=[1.0],
                        help="play every row at each scale of the diffusion agent's initial noise x_T (and DDPM's "
                             "per-step noise): 1 = as trained, 0 = deterministic (core.stages.set_noise_scale)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if len(set(args.noise_scales)) < len(args.noise_scales):
        parser.error(f"--noise-scales names a scale twice: {' '.join(f'{s:g}' for s in args.noise_scales)}")
    torch.set_num_threads(args.threads)
    agent = load_policy(args.policy, args.checkpoint)
    rows, notes = runnable_rows(args.rows)
    if not inpaints(agent):  # make_runner would refuse them: an agent that can not guide its chunks
        notes += [f"row `{row.label}` skipped: the agent does not inpaint (core.stages.inpaints)"
                  for row in rows if row.played == "inpaint"]
        rows = [row for row in rows if row.played != "inpaint"]
    if not rows:
        parser.error("no runnable row: " + "; ".join(notes))
    for scale in args.noise_scales:
        try:
            set_noise_scale(agent, scale)  # refused here, before any episode: an agent that samples no noise
        except ConfigError as error:
            parser.error(f"--noise-scales: {error}")
    table = table_rows(rows, args.noise_scales)
    for note in notes:
        print(note, file=sys.stderr)
    config = replace(TaskConfig(), variant=args.variant)
    seeds = list(range(args.seed, args.seed + args.episodes))
    total = len(table) * len(seeds) * len(args.speeds)
    bound = sum(len(table) * (len(seeds) + 1) * config.max_frames * config.frame_period / s for s in args.speeds)
    print(f"{total} episodes ({len(table)} rows x {len(seeds)} seeds x {len(args.speeds)} speeds); the world "
          f"runs at most {bound / 60:.1f} min (warm-ups included), plus SEQ's latency measurements",
          file=sys.stderr)
    task = CatchTask(config)
    progress = Progress(total)
    sections = []
    try:
        for speed in args.speeds:
            latency, runs = run_speed(agent, table, seeds, speed, task, progress, args.chunk_timing)
            sections.append(speed_section(speed, latency, config, table, runs))
    finally:
        task.close()
    machine = Machine.now(device_of(agent))
    command = shlex.join(["python", "-m", "auras_ros.eval.chunk_table", *(argv if argv is not None else sys.argv[1:])])
    text = "\n".join([
        f"# Action chunks in real time: {args.policy} policy, task variant `{args.variant}`, "
        f"chunk timing `{args.chunk_timing}`", "",
        f"Command: `{command}`", "",
        f"{machine_sentence(machine, args.threads)} Wall time of the run: {(time.monotonic() - progress.started) / 60:.1f} min.",
        "",
        f"Seeds {seeds[0]}..{seeds[-1]} (held out), paired: every row on every seed in a seeded shuffled order. "
        "Success with its 95% Wilson interval; time to success and reaction in world frames "
        f"({1000 * config.frame_period:.0f} ms of world time); seam = |Δcommand| (normalized units) where the "
        "played row comes from a newer chunk, p50/p99 over episodes of each episode's largest; jerk = "
        "|third difference| / period³ over every step; reaction = frames from the reversal to the first "
        "command heading with the target's new motion (1 = as fast as a fresh observation allows), "
        "reacted = episodes with such a command / episodes with a reversal. Definitions: "
        "`auras_ros/eval/seams.py`.", "",
        *([noise_sentence(args.noise_scales), ""] if args.noise_scales != [1.0] else []),
        *([f"- {note}" for note in notes] + [""] if notes else []),
        *sections])
    print(text)
    try:
        write_text_atomically(args.out, text)
    except OSError as error:
        return write_failed("chunk_table", error)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
