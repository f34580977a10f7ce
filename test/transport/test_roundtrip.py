"""Every transport returns the tensor it was given: all dtypes, odd shapes, every bit pattern."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from auras_ros.transport import DTYPES, HandleRegistry, make_transport
from fake_payload import FakePayload
from transport_helpers import random_tensor, same_bits
from gpu import cuda_test

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
LARGEST = 5**4 * 16  # bytes of the largest tensor drawn: 5x5x5x5 elements of complex128


@pytest.fixture(scope="module")
def transports():
    registry = HandleRegistry(capacity=4)
    made = {name: make_transport(name, registry=registry, slot_count=2, slot_bytes=LARGEST)
            for name in ("inline", "shm", "in_process")}
    yield made
    for t in made.values():
        t.close()


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(sorted(DTYPES)), shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_every_transport_roundtrips_dtype_and_shape(transports, dtype, shape, seed):
    tensor = random_tensor(DTYPES[dtype], shape, seed)
    for name, transport in transports.items():
        payload = FakePayload()
        transport.pack(tensor, payload)
        assert payload.dtype == dtype and list(payload.shape) == list(shape)
        assert payload.nbytes == tensor.numel() * tensor.element_size()
        out = transport.unpack(payload)
        assert same_bits(out, tensor), name


def test_bfloat16_vision_tokens_inline_and_shm(transports):
    tokens = torch.randn(576, 4096).bfloat16()
    for name in ("inline", "shm"):
        payload = FakePayload()
        make = make_transport(name, slot_count=2, slot_bytes=tokens.numel() * 2)
        try:
            make.pack(tokens, payload)
            assert payload.dtype == "bfloat16" and payload.nbytes == 576 * 4096 * 2
            assert torch.equal(make.unpack(payload), tokens)
        finally:
            make.close()


def test_non_contiguous_and_grad_tensors_are_sent_as_their_values(transports):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6).requires_grad_()
    view = base.t()[1:, ::2]  # strided, non-contiguous
    for name in ("inline", "shm"):
        payload = FakePayload()
        transports[name].pack(view, payload)
        out = transports[name].unpack(payload)
        assert out.is_contiguous() and not out.requires_grad
        assert torch.equal(out, view.detach())


def test_in_process_passes_the_same_object_without_copy(transports):
    tensor = torch.randn(3, 5)
    payload = FakePayload()
    transports["in_process"].pack(tensor, payload)
    assert payload.handle_id >= 1 and len(payload.data) == 0
    assert transports["in_process"].unpack(payload) is tensor


def test_inline_unpack_shares_the_message_buffer_instead_of_copying(transports):
    payload = FakePayload()
    transports["inline"].pack(torch.arange(8, dtype=torch.int32), payload)
    out = transports["inline"].unpack(payload)
    payload.data[0] = 7  # array('B'): a view of it sees the change
    assert out[0].item() == 7


def test_shm_unpack_copies_out_of_the_slot(transports):
    tensor = torch.arange(16, dtype=torch.float32)
    payload = FakePayload()
    transports["shm"].pack(tensor, payload)
    out = transports["shm"].unpack(payload)
    transports["shm"].pack(torch.zeros(16), FakePayload())
    transports["shm"].pack(torch.zeros(16), FakePayload())  # both slots rewritten
    assert torch.equal(out, tensor)


def test_a_receiver_follows_the_payload_transport(transports):
    """A subscriber made for one kind reads what the publisher chose."""
    tensor = torch.randn(2, 3)
    for sender in transports.values():
        payload = FakePayload()
        sender.pack(tensor, payload)
        for receiver in transports.values():
            assert torch.equal(receiver.unpack(payload), tensor)


@cuda_test
def test_cuda_tensor_goes_to_host_for_bytes_and_stays_for_handles(transports):
    tensor = torch.randn(4, 4, device="cuda")
    for name in ("inline", "shm"):
        payload = FakePayload()
        transports[name].pack(tensor, payload)
        out = transports[name].unpack(payload)
        assert out.device.type == "cpu" and torch.equal(out, tensor.cpu())
    payload = FakePayload()
    transports["in_process"].pack(tensor, payload)
    assert transports["in_process"].unpack(payload) is tensor
