"""Static-shape pieces of the AR agent for CUDA graphs: a graph wrapper for any static-shape call, the
SEQ decoder over a StaticCache, and the per-frame pair (perception, merged forward) of the Auras loop.

Explicit 4-D attention masks and position ids are passed to the LM so that nothing depends on how a
given transformers version derives them from the cache (5.17 and 5.24 differ in the cache's keyword).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from transformers import StaticCache

if TYPE_CHECKING:
    from auras_ros.models.ar_vla import ARVLAAgent


class CapturedCall:
    """``fn`` reading and writing fixed tensors, replayed as one CUDA graph (or called eagerly on CPU).

    The first ``warmup`` calls run eagerly on a side stream, as PyTorch requires before capture.
    If capture fails (an op that syncs with the host), the call stays eager and ``error`` says why.
    """

    def __init__(self, fn: Callable[[], None], device: torch.device, use_graph: bool, warmup: int = 2) -> None:
        self.fn = fn
        self.device = device
        self.graph: torch.cuda.CUDAGraph | None = None
        self.error: str | None = None
        if not (use_graph and device.type == "cuda"):
            return
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream(device).wait_stream(side)
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            self.graph = graph
        except Exception as exc:  # capture is an optimisation: fall back to eager, but say so
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            torch.cuda.synchronize(device)

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.fn()


def new_static_cache(lm_config, max_len: int, device: torch.device, dtype: torch.dtype) -> StaticCache:
    try:
        return StaticCache(config=lm_config, max_cache_len=max_len)
    except TypeError:  # transformers 4.x signature
        return StaticCache(config=lm_config, max_batch_size=1, max_cache_len=max_len, device=device, dtype=dtype)


class StaticDecoder:
    """Greedy prefill + decode on a StaticCache; on CUDA the one-token decode step is a CUDA graph."""

    def __init__(self, agent: "ARVLAAgent", use_cuda_graph: bool) -> None:
        self.agent = agent
        cfg = agent.config
        self.l = cfg.context_length
        self.max_len = self.l + cfg.action_dims
        device, dtype = agent.device, agent.dtype
        self.cache = new_static_cache(agent.lm.config, self.max_len, device, dtype)
        self.use_cuda_graph = use_cuda_graph and device.type == "cuda"
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
        if self.step is None and self.use_cuda_graph:
            # Capture needs an initialised cache; the warm-up calls write slots that the prefill of the
            # next request overwrites and the mask hides, so this request decodes again below.
            self.step = CapturedCall(self._decode_step, self.agent.device, use_graph=True)
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


class FrameGraphs:
    """Static buffers and the two per-frame calls of the AR agent, each a CUDA graph on the GPU:
    ``perception`` (image → percept) and ``merged`` (gen_in, X_A → X_A over all l_a positions: the merged
    forward's shape n_v + n_l + l_a − 1 is the same every frame, whatever L is). One set of buffers
    serves every in-flight request; the executor copies the percept into ``gen_in`` when its fetch
    offset says so (−1: before the next perception overwrites ``percept``)."""

    def __init__(self, agent: ARVLAAgent, use_graphs: bool) -> None:
        cfg = agent.config
        self.agent = agent
        size = cfg.image_size
        self.image = torch.zeros(size, size, 3, dtype=torch.uint8, device=agent.device)
        self.percept = torch.zeros(1, cfg.context_length, int(cfg.lm.hidden_size), dtype=agent.dtype, device=agent.device)
        self.gen_in = torch.zeros_like(self.percept)
        self.x_a = agent.initial_action_tokens()
        with torch.inference_mode():
            self.perception = CapturedCall(self._perceive, agent.device, use_graphs)
            self.merged = CapturedCall(self._merge, agent.device, use_graphs)
        self.x_a.copy_(agent.initial_action_tokens())

    def _perceive(self) -> None:
        self.percept.copy_(self.agent.perception_forward(self.image))

    def _merge(self) -> None:
        l_a = self.agent.config.action_dims
        self.x_a.copy_(self.agent.merged_action_tokens(self.gen_in, self.x_a, l_a))

    def errors(self) -> str:
        return "; ".join(f"{n} graph failed ({c.error})" for n, c in (("perception", self.perception), ("merged", self.merged)) if c.error)
