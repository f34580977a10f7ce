"""Every auras_ros message type crosses real DDS between two separate processes, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

from auras_ros.launching import node_command, run_processes
from auras_ros.nodes.roundtrip_samples import SAMPLES

_BACKSTOP_S = 60.0


def roundtrip(env: dict[str, str], params: str, log_dir: Path) -> tuple[str, str]:
    """Run listener and talker; assert both exit 0; return (listener, talker) output."""
    cmds = [node_command("auras_ros", exe, name=exe, params_files=[params])
            for exe in ("roundtrip_listener", "roundtrip_talker")]
    listener, talker = run_processes(cmds, env, _BACKSTOP_S, log_dir=log_dir)
    assert (listener.returncode, talker.returncode) == (0, 0), listener.output() + talker.output()
    return listener.output(), talker.output()


@pytest.mark.parametrize("interface", list(SAMPLES))
def test_interface_roundtrips_between_processes(interface, ros_env, params_file, tmp_path):
    params = params_file({"interfaces": [interface], "timeout_s": 20.0})
    heard, said = roundtrip(ros_env, params, tmp_path)
    assert f"sent {interface} on {SAMPLES[interface].topic}" in said
    assert f"received {interface} on {SAMPLES[interface].topic}" in heard
    assert "equals the sent sample" in heard
    others = set(SAMPLES) - {interface}
    assert not any(f"received {o} " in heard for o in others)


def test_all_interfaces_roundtrip_over_the_shared_memory_profile(ros_env, params_file, tmp_path):
    """The shipped Fast DDS profile (big SHM segment, loopback UDP) carries every interface."""
    profile = Path(get_package_share_directory("auras_ros"), "config", "fastdds_shm_profile.xml")
    env = dict(ros_env, FASTRTPS_DEFAULT_PROFILES_FILE=str(profile))
    heard, _ = roundtrip(env, params_file({"timeout_s": 20.0}), tmp_path)
    assert f"all {len(SAMPLES)} interfaces arrived intact" in heard
