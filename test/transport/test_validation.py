"""Malformed payloads and bad configuration: one precise error naming the field, never a crash."""

from __future__ import annotations

from array import array

import pytest
import torch

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.transport import (
    IN_PROCESS, HandleNotFound, HandleRegistry, PayloadReader, ShmPool, make_transport)
from fake_payload import FakePayload


@pytest.fixture
def packed():
    """A valid payload of each kind (2x3 float32), the reader for them, and the registry."""
    registry = HandleRegistry(capacity=2)
    pool = ShmPool(slot_count=2, slot_bytes=1024)
    reader = PayloadReader(registry)
    tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    made = {}
    for name, pack in (("inline", make_transport("inline").pack), ("shm", pool.pack),
                       ("in_process", make_transport("in_process", registry=registry).pack)):
        made[name] = FakePayload()
        pack(tensor, made[name])
    yield made, reader
    reader.close()
    pool.close()


def _field_of(reader: PayloadReader, payload: FakePayload) -> str:
    with pytest.raises(InputError) as caught:
        reader.unpack(payload)
    return caught.value.what


@pytest.mark.parametrize("kind", ["inline", "shm", "in_process"])
def test_unknown_dtype_names_dtype(packed, kind):
    payloads, reader = packed
    payloads[kind].dtype = "float128"
    assert _field_of(reader, payloads[kind]) == "dtype"


@pytest.mark.parametrize("kind", ["inline", "shm", "in_process"])
def test_shape_not_matching_nbytes_names_nbytes(packed, kind):
    payloads, reader = packed
    payloads[kind].shape = [3, 3]
    assert _field_of(reader, payloads[kind]) == "nbytes"


def test_inline_data_length_not_nbytes_names_data(packed):
    payloads, reader = packed
    payloads["inline"].data = payloads["inline"].data[:-4]
    assert _field_of(reader, payloads["inline"]) == "data"
    payloads["inline"].data = [1, 2, 3]
    assert _field_of(reader, payloads["inline"]) == "data"


@pytest.mark.parametrize("offset", [0, 1, 10**12])
def test_shm_offset_off_a_slot_or_outside_the_segment_names_shm_offset(packed, offset):
    payloads, reader = packed
    payloads["shm"].shm_offset = offset if offset != 1 else payloads["shm"].shm_offset + 1
    assert _field_of(reader, payloads["shm"]) == "shm_offset"


def test_shm_nbytes_beyond_the_slot_names_nbytes(packed):
    payloads, reader = packed
    payloads["shm"].shape, payloads["shm"].nbytes = [1024], 4096  # consistent, but larger than a slot
    assert _field_of(reader, payloads["shm"]) == "nbytes"


@pytest.mark.parametrize("name", ["../../etc/passwd", "fastrtps_port7400", "auras_1_xyz", ""])
def test_shm_name_not_ours_names_shm_name(packed, name):
    payloads, reader = packed
    payloads["shm"].shm_name = name
    assert _field_of(reader, payloads["shm"]) == "shm_name"


def test_shm_file_that_is_not_a_segment_names_shm_name(packed, tmp_path):
    payloads, _ = packed
    (tmp_path / "auras_1_ab").write_bytes(b"\0" * 4096)
    reader = PayloadReader(shm_dir=str(tmp_path))
    payloads["shm"].shm_name = "auras_1_ab"
    assert _field_of(reader, payloads["shm"]) == "shm_name"
    reader.close()


@pytest.mark.parametrize("generation", [0, 3])
def test_shm_generation_not_an_even_write_count_names_it(packed, generation):
    payloads, reader = packed
    payloads["shm"].shm_generation = generation
    assert _field_of(reader, payloads["shm"]) == "shm_generation"


def test_shm_payload_carrying_bytes_names_data(packed):
    payloads, reader = packed
    payloads["shm"].data = array("B", bytes(24))
    assert _field_of(reader, payloads["shm"]) == "data"


@pytest.mark.parametrize("value", [3, 255])
def test_unknown_transport_value_names_transport(packed, value):
    payloads, reader = packed
    payloads["inline"].transport = value
    assert _field_of(reader, payloads["inline"]) == "transport"


def test_in_process_payload_without_a_shared_registry_names_transport(packed):
    payloads, _ = packed
    assert _field_of(PayloadReader(registry=None), payloads["in_process"]) == "transport"


def test_in_process_handle_zero_or_of_another_tensor_names_handle_id(packed):
    payloads, reader = packed
    payloads["in_process"].handle_id = 0
    assert _field_of(reader, payloads["in_process"]) == "handle_id"
    payloads["in_process"].handle_id = reader.registry.put(torch.zeros(6, dtype=torch.int32))
    assert _field_of(reader, payloads["in_process"]) == "handle_id"


def test_registry_is_bounded_and_tells_evicted_from_unknown_handles():
    registry = HandleRegistry(capacity=2)
    ids = [registry.put(torch.full((1,), float(i))) for i in range(3)]
    assert ids == [1, 2, 3] and len(registry) == 2
    with pytest.raises(HandleNotFound) as evicted:
        registry.get(1)
    assert evicted.value.evicted
    with pytest.raises(HandleNotFound) as unknown:
        registry.get(99)
    assert not unknown.value.evicted
    assert registry.get(3).item() == 2.0


def test_registries_are_separate():
    a, b = HandleRegistry(), HandleRegistry()
    payload = FakePayload()
    make_transport("in_process", registry=a).pack(torch.ones(2), payload)
    with pytest.raises(HandleNotFound):
        PayloadReader(b).unpack(payload)
    assert payload.transport == IN_PROCESS


def test_packing_a_tensor_larger_than_a_slot_names_nbytes():
    pool = ShmPool(slot_count=2, slot_bytes=16)
    try:
        with pytest.raises(InputError) as caught:
            pool.pack(torch.zeros(5), FakePayload())
        assert caught.value.what == "nbytes" and caught.value.got == 20
        pool.pack(torch.zeros(4), FakePayload())  # exactly a slot fits
    finally:
        pool.close()


@pytest.mark.parametrize("kind", ["inline", "shm", "in_process"])
def test_packing_what_is_not_a_supported_tensor_names_it(kind):
    transport = make_transport(kind, registry=HandleRegistry(), slot_count=2, slot_bytes=64)
    try:
        with pytest.raises(InputError) as caught:
            transport.pack([1.0, 2.0], FakePayload())
        assert caught.value.what == "tensor"
        with pytest.raises(InputError) as caught:
            transport.pack(torch.zeros(2, dtype=torch.uint16), FakePayload())
        assert caught.value.what == "dtype"
    finally:
        transport.close()


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "udp"}, "transport"),
    ({"name": "in_process"}, "registry"),
    ({"name": "inline", "registry": {}}, "registry"),
    ({"name": "shm", "slot_count": 1}, "slot_count"),
    ({"name": "shm", "slot_bytes": 0}, "slot_bytes"),
])
def test_bad_configuration_is_a_config_error_naming_the_field(kwargs, field):
    name = kwargs.pop("name")
    with pytest.raises(ConfigError) as caught:
        make_transport(name, **kwargs)
    assert caught.value.field == field
