"""Write the tiny OpenVLA checkpoint and golden actions that test/models/test_openvla.py checks.

Run it ONCE in a scratch environment that has OpenVLA's reference pins, never in the project's venv; it
imports the reference's Hugging Face code (``prismatic/extern/hf/``) from a directory given on the
command line (nothing of it is copied here) and writes ``test/data/openvla_tiny/``:

- ``checkpoint/``: the model exactly in the layout of ``openvla/openvla-7b``: ``config.json``
  (``OpenVLAConfig``, ``dinosiglip-vit-so-224px``, ``no-align+fused-gelu-mlp``, ``llama2-7b-pure``,
  ``norm_stats`` with two keys, one with a ``mask``), bf16 weights sharded into ``model-*.safetensors``
  with ``model.safetensors.index.json``, ``preprocessor_config.json`` (the reference's
  ``PrismaticImageProcessor``, ``resize-naive``) and a tiny word-level tokenizer
  (``tokenizer.json`` + ``tokenizer_config.json``);
- ``image.png`` (224x224 RGB) and ``golden.json``: the instruction, the prompt, the prompt's token ids
  as ``predict_action`` feeds them (with its appended 29871), the logits over the 256 action ids (in id
  order) at each of the 7 greedy steps, and per ``unnorm_key`` the action tokens and actions that
  ``OpenVLAForActionPrediction.predict_action`` produced (fp32, greedy), after loading the saved directory
  back with ``from_pretrained(torch_dtype=torch.float32)``.

Tiny widths: the reference builds its featurizers with ``timm.create_model(<the timm id>, ...)``; this
script adds width keywords to those two calls only (DINOv2-reg4: width 64, 1 head, 3 blocks, MLP 128;
SigLIP: width 72, 1 head, 3 blocks, MLP 144), so the modules and their names are the real ones. The
head widths are the published ones (64 and 72), the rule our loader uses to get the head counts, which
a checkpoint does not store. The LM is Llama with Llama-2's vocabulary (32000 + 64 padding, so the
action ids 31744..31999 and the appended 29871 are the real ones) at width 12, 2 layers. Every
parameter is redrawn (norms around 1, LayerScale around 0.3) so that a loader that skipped one would
not match, and the LM head's rows of non-action ids are zero: the reference's greedy decode runs over
the whole vocabulary, ours over the 256 action ids (what a trained OpenVLA emits); the script checks
that the reference's tokens are all action ids.

Versions used for the committed files (x86_64, CPU, fp32):
    python 3.11.7, torch 2.14.1+cu130 (timm needs torchvision, which PyPI's build cannot import beside
    the 2.13.0 CPU file), torchvision 0.29.1+cu130, transformers 4.40.1, timm 0.9.10, tokenizers 0.19.1,
    numpy 1.26.4, pillow 13.0.0, safetensors 0.8.0, huggingface_hub 0.36.2;
    openvla/openvla at c8f03f48af692657d3060c19588038c7220e9af9.
Scratch environment::

    python3.11 -m venv /tmp/openvla_env
    /tmp/openvla_env/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/openvla_env/bin/pip install transformers==4.40.1 timm==0.9.10 tokenizers==0.19.1 "numpy<2"
    mkdir -p /tmp/openvla_hf && for f in __init__ configuration_prismatic modeling_prismatic processing_prismatic; do
        git -C <openvla clone> show HEAD:prismatic/extern/hf/$f.py > /tmp/openvla_hf/$f.py; done
    /tmp/openvla_env/bin/python tools/openvla_golden.py /tmp/openvla_hf
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[1] / "test" / "data" / "openvla_tiny"
SEED = 17
LM_STD = 0.5  # the LM's weights: wide enough that the 7 greedy tokens differ from one another
TINY_FEATURIZERS = {  # timm id -> width keywords added to the reference's create_model call
    "vit_large_patch14_reg4_dinov2.lvd142m": dict(embed_dim=64, depth=3, num_heads=1, mlp_ratio=2.0),
    "vit_so400m_patch14_siglip_224": dict(embed_dim=72, depth=3, num_heads=1, mlp_ratio=2.0),
}
TEXT_CONFIG = dict(model_type="llama", vocab_size=32064, hidden_size=12, intermediate_size=32, num_hidden_layers=2,
                   num_attention_heads=2, num_key_value_heads=2, pad_token_id=32000)
NORM_STATS = {
    "tiny_a": {"action": {"q01": [-0.5, -0.4, -0.3, -0.2, -0.1, -0.05, 0.0],
                          "q99": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0],
                          "mask": [True, True, True, True, True, True, False]}},
    "tiny_b": {"action": {"q01": [-2.0, -1.0, -3.0, 0.0, 0.1, -0.2, -1.0],
                          "q99": [2.0, 1.5, 3.0, 0.3, 0.4, 0.2, 1.0]}},  # no mask: every dimension unnormalised
}
INSTRUCTION = "pick up the red block"
WORDS = ("In", ":", "What", "action", "should", "the", "robot", "take", "to", "pick", "up", "red", "block", "?", "Out")


def prompt_for(instruction: str) -> str:
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: 3 + i for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def redraw(model: torch.nn.Module, action_ids: range, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("scale_factor"):
                p.copy_(0.3 + 0.1 * noise)
            else:
                p.copy_(LM_STD * noise if name.startswith("language_model") else 0.1 * noise)
        head = model.get_output_embeddings().weight
        keep = torch.zeros(head.shape[0], dtype=torch.bool)
        keep[action_ids.start : action_ids.stop] = True
        head[~keep] = 0.0


def image() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:224, 0:224] / 224.0
    base = np.stack([x, y, 0.5 * (x + y)], axis=-1)
    blobs = rng.normal(size=(8, 8, 3)).repeat(28, 0).repeat(28, 1) * 0.15
    return (np.clip(base + blobs, 0, 1) * 255).round().astype(np.uint8)


def main(hf_dir: str) -> None:
    from PIL import Image

    sys.path.insert(0, str(Path(hf_dir).parent))
    package = Path(hf_dir).name
    configuration = importlib.import_module(f"{package}.configuration_prismatic")
    modeling = importlib.import_module(f"{package}.modeling_prismatic")
    processing = importlib.import_module(f"{package}.processing_prismatic")

    create_model = modeling.timm.create_model

    def tiny_create_model(model_id: str, **kwargs: Any) -> Any:
        return create_model(model_id, **{**kwargs, **TINY_FEATURIZERS[model_id]})

    modeling.timm.create_model = tiny_create_model
    config = configuration.OpenVLAConfig(
        vision_backbone_id="dinosiglip-vit-so-224px", llm_backbone_id="llama2-7b-pure",
        arch_specifier="no-align+fused-gelu-mlp", image_resize_strategy="resize-naive",
        text_config=TEXT_CONFIG, norm_stats=NORM_STATS, n_action_bins=256, pad_to_multiple_of=64,
        pad_token_id=32000, torch_dtype="bfloat16",
    )
    torch.manual_seed(SEED)
    model = modeling.OpenVLAForActionPrediction(config)
    vocab = TEXT_CONFIG["vocab_size"] - 64
    redraw(model, range(vocab - 256, vocab), torch.Generator().manual_seed(SEED))

    shutil.rmtree(OUT, ignore_errors=True)
    checkpoint = OUT / "checkpoint"
    model.to(torch.bfloat16).save_pretrained(checkpoint, max_shard_size="400KB", safe_serialization=True)
    processor = processing.PrismaticImageProcessor(
        use_fused_vision_backbone=True, image_resize_strategy="resize-naive",
        input_sizes=[(3, 224, 224), (3, 224, 224)], interpolations=["bicubic", "bicubic"],
        means=[(0.485, 0.456, 0.406), (0.5, 0.5, 0.5)], stds=[(0.229, 0.224, 0.225), (0.5, 0.5, 0.5)],
    )
    processor.save_pretrained(checkpoint)
    tokenizer = tiny_tokenizer()
    tokenizer.save_pretrained(checkpoint)

    reference = modeling.OpenVLAForActionPrediction.from_pretrained(checkpoint, torch_dtype=torch.float32).eval()
    picture = image()
    Image.fromarray(picture).save(OUT / "image.png")
    pil = Image.open(OUT / "image.png")
    pixel_values = torch.as_tensor(processor(pil, return_tensors="pt")["pixel_values"])
    input_ids = tokenizer(prompt_for(INSTRUCTION), return_tensors="pt").input_ids
    golden: dict[str, Any] = {"instruction": INSTRUCTION, "prompt": prompt_for(INSTRUCTION),
                              "input_ids": input_ids[0].tolist() + [29871], "actions": {}, "tokens": {}}
    with torch.no_grad():
        for key in NORM_STATS:
            actions = reference.predict_action(input_ids, unnorm_key=key, pixel_values=pixel_values, do_sample=False)
            ids = torch.cat([input_ids, torch.tensor([[29871]])], dim=1)
            out = reference.generate(ids, pixel_values=pixel_values, max_new_tokens=7, do_sample=False,
                                     output_scores=True, return_dict_in_generate=True)
            tokens = out.sequences[0, -7:]
            # The logits behind the tokens, over the action ids in id order: a continuous check of the path.
            golden["action_logits"] = torch.stack(out.scores)[:, 0, vocab - 256 : vocab].tolist()
            if not all(vocab - 256 <= int(t) < vocab for t in tokens):
                raise SystemExit(f"the reference emitted a non-action token {tokens.tolist()}: change SEED")
            blank = reference.generate(ids, pixel_values=torch.zeros_like(pixel_values), max_new_tokens=7, do_sample=False)
            if torch.equal(blank[0, -7:], tokens):  # the golden must depend on the vision path
                raise SystemExit("the tokens do not depend on the image: change SEED or the widths")
            golden["actions"][key] = [float(a) for a in actions]
            golden["tokens"][key] = [int(t) for t in tokens]
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB): {golden}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: openvla_golden.py <directory holding prismatic/extern/hf's .py files>")
    main(sys.argv[1])
