"""`make run` for now: a talker and a listener, two processes, round-trip every interface over DDS."""

from __future__ import annotations

import os
import sys

from ament_index_python.packages import get_package_share_directory

from auras_ros.launching import node_command, private_ros_env, run_processes

# The nodes give up after their own timeout_s (config/roundtrip.yaml); this only catches a hang.
_BACKSTOP_S = 60.0


def main() -> int:
    params = os.path.join(get_package_share_directory("auras_ros"), "config", "roundtrip.yaml")
    cmds = [node_command("auras_ros", exe, name=exe, params_files=[params])
            for exe in ("roundtrip_listener", "roundtrip_talker")]
    with private_ros_env() as env:
        print(f"roundtrip demo: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, "
              f"ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, two processes", flush=True)
        results = run_processes(cmds, env, _BACKSTOP_S)
    failed = [r for r in results if r.returncode != 0]
    for r in failed:
        reason = f"still running after {_BACKSTOP_S} s" if r.timed_out else f"exit code {r.returncode}"
        print(f"roundtrip demo: FAILED: {os.path.basename(r.cmd[0])}: {reason}", flush=True)
    if not failed:
        print("roundtrip demo: OK: every interface made the round trip between two processes", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
