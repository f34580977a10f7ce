"""Start auras_ros node executables as separate processes, the way launch_ros would.

`ros2 launch` is not installable everywhere (not from PyPI, for one), so the demo and the tests
start nodes with the same command lines launch_ros builds, on a private DDS domain, and stop them
the way a launch shutdown does: SIGINT, wait, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Optional, Sequence

from ament_index_python.packages import get_package_prefix, get_package_share_directory


def executable_path(package: str, executable: str) -> str:
    """Where launch_ros and `ros2 run` find a package's executable: <prefix>/lib/<package>/<exe>."""
    return os.path.join(get_package_prefix(package), "lib", package, executable)


def fastdds_profile() -> str:
    """config/fastdds_shm_profile.xml of the installed package: Fast DDS with a shared-memory segment
    large enough for camera frames (a message larger than its publisher's segment never reaches another
    process: transport/dds_limits.py)."""
    return os.path.join(get_package_share_directory("auras_ros"), "config", "fastdds_shm_profile.xml")


def with_fastdds_profile(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the package's Fast DDS profile, unless it names a profile of its own already."""
    from auras_ros.transport.dds_limits import PROFILES_ENV

    return env if env.get(PROFILES_ENV) else {**env, PROFILES_ENV: fastdds_profile()}


def node_command(package: str, executable: str, name: Optional[str] = None,
                 params_files: Sequence[str] = (), remappings: Sequence[tuple[str, str]] = (),
                 arguments: Sequence[str] = ()) -> list[str]:
    """The command line launch_ros.actions.Node runs for these arguments."""
    cmd = [executable_path(package, executable), *arguments, "--ros-args"]
    if name:
        cmd += ["-r", f"__node:={name}"]
    for path in params_files:
        cmd += ["--params-file", path]
    for src, dst in remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


@contextlib.contextmanager
def private_ros_env(base: Optional[dict[str, str]] = None) -> Iterator[dict[str, str]]:
    """An environment with a ROS_DOMAIN_ID no other process on this host holds, localhost only, and the
    package's Fast DDS profile (unless the base names one), so camera frames travel between its processes.

    The id stays reserved while the context is open (domain_coordinator binds a port per id). This
    process's own rclpy (a listener, a composed graph) is held to localhost too while it is open: rclpy
    reads the discovery range from ``os.environ`` at init; the caller passes the domain id itself.
    """
    import domain_coordinator

    with domain_coordinator.domain_id() as domain:
        env = with_fastdds_profile(dict(os.environ if base is None else base))
        env["ROS_DOMAIN_ID"] = str(domain)
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; it would override the range
        before = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        try:
            yield env
        finally:
            if before is None:
                os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
            else:
                os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = before


@dataclass
class ProcessResult:
    cmd: list[str]
    returncode: int
    timed_out: bool
    log: Optional[Path]  # combined stdout/stderr, when the caller asked for logs

    def output(self) -> str:
        return self.log.read_text() if self.log else ""


def stop_process(proc: subprocess.Popen, grace_s: float = 5.0) -> int:
    """SIGINT, then SIGTERM, then SIGKILL, each after grace_s; returns the exit code."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    return proc.wait()


def run_processes(cmds: Sequence[list[str]], env: dict[str, str], timeout_s: float,
                  log_dir: Optional[Path] = None) -> list[ProcessResult]:
    """Run the commands side by side until all exit or timeout_s passes; stop what is left.

    Output goes to the caller's stdout, or to one file per process under log_dir.
    """
    logs: list[Optional[Path]] = []
    procs: list[subprocess.Popen] = []
    files: list[IO] = []
    try:
        for i, cmd in enumerate(cmds):
            log = log_dir / f"{i}_{Path(cmd[0]).name}.log" if log_dir else None
            out = open(log, "w") if log else None
            if out:
                files.append(out)
            logs.append(log)
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None))
        deadline = time.monotonic() + timeout_s
        timed_out = []
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
                timed_out.append(False)
            except subprocess.TimeoutExpired:
                timed_out.append(True)
    finally:
        codes = [stop_process(p) for p in procs]
        for f in files:
            f.close()
    return [ProcessResult(list(c), rc, t, log) for c, rc, t, log in zip(cmds, codes, timed_out, logs, strict=False)]
