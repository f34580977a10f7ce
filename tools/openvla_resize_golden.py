"""Write the golden files of OpenVLA's image resize for a camera frame of another size than 224x224.

Run it ONCE in the scratch environment of ``tools/openvla_golden.py`` (same versions, its docstring),
never in the project's venv, after that script wrote ``test/data/openvla_tiny/``::

    /tmp/openvla_env/bin/python tools/openvla_resize_golden.py /tmp/openvla_hf

It loads the tiny checkpoint back with the reference's code (``from_pretrained``, fp32) and its
``PrismaticImageProcessor`` (``preprocessor_config.json``: ``resize-naive``, bicubic with antialiasing,
torchvision's ``resize`` on a PIL image), and writes beside the checkpoint:

- ``camera_640x480.png``: a 640x480 camera frame (smooth colours and blobs, as a camera sees);
- ``camera_640x480_224.png``: the 224x224 image the processor made of it, recovered from its
  ``pixel_values`` by inverting SigLIP's normalisation (mean 0.5, std 0.5) and checked against
  DINOv2's half (the same image under the other normalisation);
- ``golden_640x480.json``: per ``unnorm_key`` the tokens and actions ``predict_action`` produced on it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openvla_golden  # noqa: E402  (the tiny checkpoint's instruction, featurizer widths and norm stats)

SIZE = (480, 640)  # H, W of the camera frame
SEED = 23


def camera_frame() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    height, width = SIZE
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, 0.5 * (x / width + y / height)], axis=-1)
    blobs = rng.normal(size=(12, 16, 3)).repeat(height // 12, 0).repeat(width // 16, 1) * 0.15
    return (np.clip(base + blobs, 0, 1) * 255).round().astype(np.uint8)


def main(hf_dir: str) -> None:
    from PIL import Image

    sys.path.insert(0, str(Path(hf_dir).parent))
    package = Path(hf_dir).name
    modeling = importlib.import_module(f"{package}.modeling_prismatic")
    processing = importlib.import_module(f"{package}.processing_prismatic")
    create_model = modeling.timm.create_model
    modeling.timm.create_model = lambda model_id, **kwargs: create_model(
        model_id, **{**kwargs, **openvla_golden.TINY_FEATURIZERS[model_id]})

    out = openvla_golden.OUT
    checkpoint = out / "checkpoint"
    processor = processing.PrismaticImageProcessor.from_pretrained(checkpoint)
    reference = modeling.OpenVLAForActionPrediction.from_pretrained(checkpoint, torch_dtype=torch.float32).eval()
    Image.fromarray(camera_frame()).save(out / "camera_640x480.png")
    pil = Image.open(out / "camera_640x480.png")
    pixel_values = torch.as_tensor(processor(pil, return_tensors="pt")["pixel_values"])[0]  # (6, 224, 224)
    siglip = (pixel_values[3:] * 0.5 + 0.5) * 255
    resized = siglip.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    dino_mean, dino_std = torch.tensor(processor.means[0])[:, None, None], torch.tensor(processor.stds[0])[:, None, None]
    dino = (pixel_values[:3] * dino_std + dino_mean) * 255
    if (siglip - siglip.round()).abs().max() > 1e-3 or (dino - siglip).abs().max() > 1e-3:
        raise SystemExit("pixel_values are not one uint8 image under two normalisations")
    Image.fromarray(resized).save(out / "camera_640x480_224.png")

    tokenizer = openvla_golden.tiny_tokenizer()
    input_ids = tokenizer(openvla_golden.prompt_for(openvla_golden.INSTRUCTION), return_tensors="pt").input_ids
    golden: dict = {"instruction": openvla_golden.INSTRUCTION, "actions": {}, "tokens": {}}
    ids = torch.cat([input_ids, torch.tensor([[29871]])], dim=1)
    with torch.no_grad():
        for key in openvla_golden.NORM_STATS:
            actions = reference.predict_action(input_ids, unnorm_key=key, pixel_values=pixel_values[None],
                                               do_sample=False)
            tokens = reference.generate(ids, pixel_values=pixel_values[None], max_new_tokens=7, do_sample=False)[0, -7:]
            golden["actions"][key] = [float(a) for a in actions]
            golden["tokens"][key] = [int(t) for t in tokens]
    (out / "golden_640x480.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {out}: {golden}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: openvla_resize_golden.py <directory holding prismatic/extern/hf's .py files>")
    main(sys.argv[1])
