"""The AR agent's SEQ decoder over a StaticCache, its one-token decode step a CUDA graph on a GPU.

Explicit 4-D attention masks and position ids are passed to the LM so that nothing depends on how a
given transformers version derives them from the cache (5.17 and 5.24 differ in the cache's keyword).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from transformers import StaticCache

from auras_ros.models.graphs import Capture, CapturedCall, CaptureLog, weak_call


class DecoderParts(Protocol):
    """What the decoder uses of :class:`auras_ros.models.ar_vla.ARVLAAgent` (which imports this module)."""

    config: Any
    device: torch.device
    dtype: torch.dtype
    lm: Any
    backbone: Any
    token_embedding: Any
    cache_kwarg: str

    def greedy_action_tokens(self, hidden: torch.Tensor) -> torch.Tensor: ...


def new_static_cache(lm_config: Any, max_len: int, device: torch.device, dtype: torch.dtype) -> StaticCache:
    try:
        return StaticCache(config=lm_config, max_cache_len=max_len)
    except TypeError:  # transformers 4.x signature
        return StaticCache(config=lm_config, max_batch_size=1, max_cache_len=max_len, device=device, dtype=dtype)


class StaticDecoder:
    """Greedy prefill + decode on a StaticCache; on CUDA the one-token decode step is a CUDA graph."""

    def __init__(self, agent: DecoderParts, capture: Capture | None, log: CaptureLog | None = None) -> None:
        self.agent = agent
        cfg = agent.config
        self.l = cfg.context_length
        self.max_len = self.l + cfg.action_dims
        device, dtype = agent.device, agent.dtype
        self.cache = new_static_cache(agent.lm.config, self.max_len, device, dtype)
        self.capture = capture
        self.log = log
        self.slots = torch.arange(self.max_len, device=device)
        self.neg = torch.finfo(dtype).min
        # Fixed tensors the decode step reads and writes (the graph's inputs and output).
        self.token = torch.zeros(1, dtype=torch.long, device=device)
        self.position = torch.zeros(1, 1, dtype=torch.long, device=device)
        self.next_token = torch.zeros(1, dtype=torch.long, device=device)
        self.step: CapturedCall | None = None

    def _mask(self, query_positions: torch.Tensor) -> torch.Tensor:
        allowed = self.slots.view(1, -1) <= query_positions.view(-1, 1)
        zero = torch.zeros((), dtype=self.agent.dtype, device=self.agent.device)
        return torch.where(allowed, zero, self.neg).view(1, 1, -1, self.max_len)

    def _forward(self, embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        agent = self.agent
        out = agent.backbone(
            inputs_embeds=embeds, attention_mask=self._mask(positions[0]), position_ids=positions,
            use_cache=True, **{agent.cache_kwarg: self.cache},
        )
        return agent.greedy_action_tokens(out.last_hidden_state[:, -1:])[0]

    def _decode_step(self) -> None:
        embeds = self.agent.token_embedding(self.token).unsqueeze(0)
        self.next_token.copy_(self._forward(embeds, self.position))

    def decode(self, percept: torch.Tensor) -> torch.Tensor:
        self.cache.reset()
        positions = torch.arange(self.l, device=self.agent.device).unsqueeze(0)
        first = self._forward(percept, positions)
        self.token.copy_(first)
        self.position.fill_(self.l)
        tokens = [first]
        if self.step is None and self.capture is not None:
            # Capture needs an initialised cache; the warm-up calls write slots that the prefill of the
            # next request overwrites and the mask hides, so this request decodes again below.
            self.step = CapturedCall(weak_call(self._decode_step), self.agent.device, self.capture, self.log,
                                     "SEQ decode step")
            return self.decode(percept)
        for _ in range(self.agent.config.action_dims - 1):
            if self.step is not None:
                self.step()
            else:
                self._decode_step()
            tokens.append(self.next_token.clone())
            self.token.copy_(self.next_token)
            self.position.add_(1)
        return torch.cat(tokens)
