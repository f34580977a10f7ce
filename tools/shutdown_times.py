"""Seconds from SIGINT to exit of each process of launch/auras.launch.py (distributed and composed), the
number behind the launch files' sigterm_timeout. Runs the shipped nodes through the test suite's launch
stand-in (test/launch_stub.py), on a private ROS domain, optionally beside busy processes.

    tools/setup_env.sh python tools/shutdown_times.py [--busy 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

import pytest  # noqa: E402 - the stand-in loads launch files through a MonkeyPatch

from auras_ros.core.stats import Spread  # noqa: E402
from auras_ros.launching import private_ros_env  # noqa: E402
from launch_stub import LaunchRun, load_launch_file  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes beside the graph")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=12.0, help="seconds the graph runs before SIGINT")
    args = parser.parse_args()
    description = load_launch_file(REPO / "launch" / "auras.launch.py", pytest.MonkeyPatch())
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    times: dict[str, list[float]] = {}
    try:
        for _ in range(args.repeats):
            for composed in ("false", "true"):
                with private_ros_env() as env, tempfile.TemporaryDirectory() as tmp:
                    run = LaunchRun(description, {"source": str(REPO / "data" / "demo_frames"), "composed": composed,
                                                  "outputs": "[twist_stamped]"}, env, Path(tmp))
                    time.sleep(args.settle)  # the graph comes up and decides; what is measured comes after
                    start = time.monotonic()
                    for process in run.processes:
                        process.popen.send_signal(signal.SIGINT)
                    running = list(run.processes)
                    while running and time.monotonic() - start < 60.0:  # a hang guard
                        for process in [p for p in running if p.popen.poll() is not None]:
                            times.setdefault(process.name.rsplit("-", 1)[0], []).append(time.monotonic() - start)
                            running.remove(process)
                        time.sleep(0.01)  # polls child processes: each one's own exit time is the measurement
                    run.close()
    finally:
        for hog in hogs:
            hog.kill()
    print(f"SIGINT to exit, {args.repeats} repeats, {args.busy} busy processes beside:")
    for name, seconds in sorted(times.items()):
        spread = Spread.of(seconds)
        print(f"  {name:16s} median {spread.median:.2f} s  [{spread.low:.2f}-{spread.high:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
