"""Write an OpenVLA-7B-shaped checkpoint (random bf16 weights) in the layout of ``openvla/openvla-7b``,
for the GPU check of the real-size load and throughput where the real weights cannot be fetched:

    python tools/openvla_shaped.py /tmp/openvla_7b_shaped            # 7.5 B parameters, 15 GB
    python -m auras_ros.bench.gpu_models --model /tmp/openvla_7b_shaped --instruction "pick up the red block" \
        --unnorm-key tiny_a --executors seq auras:1+7:f-1:a0
    (tools/openvla_7b_gpu_check.sh runs both, time-boxed)

The tensor names and the non-weight files are those of the tiny checkpoint the reference wrote
(``test/data/openvla_tiny/checkpoint``, ``tools/openvla_golden.py``): its ``config.json`` with Llama-2-7B's
``text_config``, its ``preprocessor_config.json``, ``norm_stats`` (``tiny_a``, ``tiny_b``) and word-level
tokenizer (so the prompt is 16 tokens, where Llama-2's tokenizer makes about 20 of the same words). The
shapes are the real ones (:data:`OPENVLA_7B`): DINOv2 ViT-L/14 with 4 registers (1024 wide, 24 blocks),
SigLIP so400m/14 (1152 wide, 27 blocks), the fused-gelu-mlp projector (2176 -> 8704 -> 4096 -> 4096) and
Llama-2-7B (4096 wide, 32 layers, vocabulary 32000 padded to 32064). SigLIP's pooling head, which the
features do not use and the loader skips, is left out. Shards of at most 4 GB, listed by
``model.safetensors.index.json``, written one at a time (the host holds one shard, not the model).
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import save_file

TINY = Path(__file__).resolve().parents[1] / "test" / "data" / "openvla_tiny" / "checkpoint"
COPIED = ("preprocessor_config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json",
          "tokenizer_config.json")
VOCAB = 32064  # Llama-2's 32000, padded to a multiple of 64
PATCH, PATCHES, REGISTERS = 14, 256, 4  # 224 px images
SHARD_BYTES = 4 * 2**30


@dataclass(frozen=True)
class Shape:
    """Widths, MLP widths and depths; each tower's head width is the published one (64, 72)."""

    dino: tuple[int, int, int]  # width, mlp, blocks
    siglip: tuple[int, int, int]
    lm: tuple[int, int, int, int]  # width, intermediate, layers, heads


OPENVLA_7B = Shape(dino=(1024, 4096, 24), siglip=(1152, 4304, 27), lm=(4096, 11008, 32, 32))


def tensors(shape: Shape) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Every tensor's name and shape, as OpenVLA's ``save_pretrained`` names them (timm's featurizers)."""
    for prefix, (width, mlp, blocks), dino in (("vision_backbone.featurizer.", shape.dino, True),
                                               ("vision_backbone.fused_featurizer.", shape.siglip, False)):
        if dino:
            yield prefix + "cls_token", (1, 1, width)
            yield prefix + "reg_token", (1, REGISTERS, width)
        yield prefix + "pos_embed", (1, PATCHES, width)
        yield prefix + "patch_embed.proj.weight", (width, 3, PATCH, PATCH)
        yield prefix + "patch_embed.proj.bias", (width,)
        for i in range(blocks):
            block = f"{prefix}blocks.{i}."
            for name in ("norm1", "norm2"):
                yield block + name + ".weight", (width,)
                yield block + name + ".bias", (width,)
            yield block + "attn.qkv.weight", (3 * width, width)
            yield block + "attn.qkv.bias", (3 * width,)
            yield block + "attn.proj.weight", (width, width)
            yield block + "attn.proj.bias", (width,)
            yield block + "mlp.fc1.weight", (mlp, width)
            yield block + "mlp.fc1.bias", (mlp,)
            yield block + "mlp.fc2.weight", (width, mlp)
            yield block + "mlp.fc2.bias", (width,)
            if dino:
                yield block + "ls1.scale_factor", (width,)
                yield block + "ls2.scale_factor", (width,)
        yield prefix + "norm.weight", (width,)
        yield prefix + "norm.bias", (width,)
    vision, (lm, intermediate, layers, _) = shape.dino[0] + shape.siglip[0], shape.lm
    for name, out, inp in (("fc1", 4 * vision, vision), ("fc2", lm, 4 * vision), ("fc3", lm, lm)):
        yield f"projector.{name}.weight", (out, inp)
        yield f"projector.{name}.bias", (out,)
    yield "language_model.model.embed_tokens.weight", (VOCAB, lm)
    for i in range(layers):
        layer = f"language_model.model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield f"{layer}self_attn.{name}.weight", (lm, lm)
        yield f"{layer}mlp.gate_proj.weight", (intermediate, lm)
        yield f"{layer}mlp.up_proj.weight", (intermediate, lm)
        yield f"{layer}mlp.down_proj.weight", (lm, intermediate)
        yield f"{layer}input_layernorm.weight", (lm,)
        yield f"{layer}post_attention_layernorm.weight", (lm,)
    yield "language_model.model.norm.weight", (lm,)
    yield "language_model.lm_head.weight", (VOCAB, lm)


def random_tensor(name: str, size: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if "norm" in name.rsplit(".", 2)[-2] and name.endswith("weight"):
        return torch.ones(size, dtype=torch.bfloat16)  # a norm's scale
    if name.endswith("scale_factor"):
        return torch.full(size, 0.1, dtype=torch.bfloat16)  # DINOv2's LayerScale
    return torch.empty(size, dtype=torch.bfloat16).normal_(0.0, 0.02, generator=generator)


def write(directory: Path, shape: Shape = OPENVLA_7B, seed: int = 0) -> int:
    """Write the checkpoint; its parameter count."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copy(TINY / name, directory / name)
    config = json.loads((TINY / "config.json").read_text())
    width, intermediate, layers, heads = shape.lm
    config["text_config"] = {"model_type": "llama", "hidden_size": width, "intermediate_size": intermediate,
                             "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
                             "pad_token_id": 32000, "vocab_size": VOCAB}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    generator = torch.Generator().manual_seed(seed)
    names = list(tensors(shape))
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, dims in names:
        nbytes = 2 * torch.Size(dims).numel()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((name, dims))
        size += nbytes
    weight_map = {}
    for index, shard in enumerate(shards, start=1):
        file = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        save_file({name: random_tensor(name, dims, generator) for name, dims in shard}, str(directory / file),
                  metadata={"format": "pt"})
        weight_map.update({name: file for name, _ in shard})
        print(f"wrote {file} ({len(shard)} tensors)", flush=True)
    total = sum(torch.Size(dims).numel() for _, dims in names)
    index = {"metadata": {"total_size": 2 * total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    total = write(args.directory)
    print(f"{args.directory}: {total / 1e9:.2f} B parameters, {2 * total / 2**30:.1f} GiB in bf16")


if __name__ == "__main__":
    main()
