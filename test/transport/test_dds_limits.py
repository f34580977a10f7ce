"""The transport limit the nodes warn with: the shared-memory segment of the Fast DDS profile in effect."""

from __future__ import annotations

from pathlib import Path

from sensor_msgs.msg import CompressedImage

from auras_ros.transport.dds_limits import FASTDDS_DEFAULT_SEGMENT, PROFILES_ENV, message_bytes, segment_limit

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "fastdds_shm_profile.xml"


def test_the_shipped_profile_gives_its_segment() -> None:
    limit = segment_limit({PROFILES_ENV: str(SHIPPED)})
    assert limit.nbytes == 32 * 1024 * 1024 and str(SHIPPED) in limit.source


def test_without_a_profile_the_limit_is_fast_dds_default_and_says_why(tmp_path) -> None:
    assert segment_limit({}).nbytes == FASTDDS_DEFAULT_SEGMENT == 524_288
    assert f"{PROFILES_ENV} is not set" in segment_limit({}).source
    missing = segment_limit({PROFILES_ENV: str(tmp_path / "none.xml")})
    assert missing.nbytes == FASTDDS_DEFAULT_SEGMENT and "unreadable" in missing.source
    udp_only = tmp_path / "udp.xml"
    udp_only.write_text(SHIPPED.read_text().replace("<transport_id>shm_big</transport_id>\n      </userTransports>",
                                                    "</userTransports>").replace(
        "<transport_id>shm_big</transport_id>\n        <transport_id>udp_loopback</transport_id>",
        "<transport_id>udp_loopback</transport_id>"))
    limit = segment_limit({PROFILES_ENV: str(udp_only)})
    assert limit.nbytes == FASTDDS_DEFAULT_SEGMENT and "sets none for its default participant" in limit.source


def test_message_bytes_counts_serialized_messages_and_data_fields() -> None:
    assert message_bytes(b"\x00" * 2_000_000) == 2_000_000
    assert message_bytes(CompressedImage(format="jpeg", data=b"\xff" * 123)) == 123
