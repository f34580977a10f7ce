"""The composed agent on the frames the repository ships (no world to act in), SEQ then Auras, with
live numbers and the ratio (`python -m auras_ros.demo --frames-demo`).

Each executor runs in its own `auras_composed` process on a private ROS domain (localhost only), on
the same model, camera and duration; the ratio compares the two runs of this one command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory

from auras_ros.launching import executable_path, private_ros_env

REPO = Path(__file__).resolve().parents[1]


def run_composed(mode: str, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> dict:
    params = workdir / f"{mode}.yaml"
    executor = "seq" if mode == "seq" else f"auras:1+{args.pp_generation}:f0:a0"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        "model": args.model, "executor": executor, "transport": "in_process",
        "source": str(args.source), "rate_hz": args.camera_hz, "stats_period": 1.0}}}))
    config = Path(get_package_share_directory("auras_ros"), "config", "auras.yaml")
    command = [executable_path("auras_ros", "auras_composed"), "--no-action", "--live", "--duration",
               str(args.duration), "--ros-args", "--params-file", str(config), "--params-file", str(params)]
    print(f"{mode.upper()}: {args.model} on {args.source.name} at {args.camera_hz:g} Hz for {args.duration:g} s", flush=True)
    process = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, timeout=args.duration + 120)
    lines = process.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    if process.returncode != 0 or not lines:
        raise SystemExit(f"demo: the {mode} run failed (exit {process.returncode}); its output is above")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="diffusion-tiny", help="agent preset or checkpoint directory")
    parser.add_argument("--source", type=Path, default=REPO / "data" / "demo_frames", help="image folder or video")
    parser.add_argument("--camera-hz", type=float, default=60.0)
    parser.add_argument("--pp-generation", type=int, default=4)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per executor")
    args = parser.parse_args(argv)
    import tempfile
    with private_ros_env() as env, tempfile.TemporaryDirectory() as tmp:
        results = {mode: run_composed(mode, args, env, Path(tmp)) for mode in ("seq", "auras")}
    seq, auras = results["seq"], results["auras"]
    print()
    print(f"| {'executor':<22} | {'decisions/s':>11} | {'age p50 ms':>10} | {'age p99 ms':>10} | {'interval CV':>11} |")
    print(f"|{'-' * 24}|{'-' * 13}|{'-' * 12}|{'-' * 12}|{'-' * 13}|")
    for name, r in (("SEQ", seq), (f"Auras (L={1 + auras['pp_generation']})", auras)):
        print(f"| {name:<22} | {r['decisions_per_s']:>11.1f} | {r['age_p50_s'] * 1e3:>10.1f} | "
              f"{r['age_p99_s'] * 1e3:>10.1f} | {r['interval_cv']:>11.3f} |")
    print(f"\nAuras / SEQ: {auras['decisions_per_s'] / seq['decisions_per_s']:.2f}x decisions per second, "
          f"observation age p50 {auras['age_p50_s'] / seq['age_p50_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
