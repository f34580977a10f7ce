"""LeRobot's feature normalisation, read from a checkpoint's processor files.

A LeRobot (>= 0.4) ``pretrained_model/`` keeps the dataset statistics beside the policy: the
preprocessor's ``normalizer_processor`` step and the postprocessor's ``unnormalizer_processor`` step,
each a JSON config (``eps``, ``features``, ``norm_map``) and a ``state_file`` of flat
``"<feature key>.<stat>"`` tensors. A feature's mode comes from its type (VISUAL, STATE, ACTION, ...)
through ``norm_map``; the formulas are LeRobot's:

- MEAN_STD: ``(x - mean) / (std + eps)``, inverse ``x * std + mean``;
- MIN_MAX, QUANTILES (q01/q99), QUANTILE10 (q10/q90): ``2 (x - lo) / d - 1`` with ``d = hi - lo``
  (``eps`` where ``d`` is 0), inverse ``(x + 1) / 2 * d + lo``;
- IDENTITY, or a feature without statistics: unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file

from auras_ros.core.errors import ConfigError, one_of
from auras_ros.models.checkpoint_files import read_json_object, read_weights

MODE_STATS = {"MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max"), "QUANTILES": ("q01", "q99"),
              "QUANTILE10": ("q10", "q90")}
MODES = ("IDENTITY", *MODE_STATS)
# Processor steps that change nothing for one observation already on its device: batching, device moves and
# an empty rename. Anything else is a transform this loader does not reproduce, so it is refused.
PASSIVE_STEPS = ("rename_observations_processor", "to_batch_processor", "device_processor")
NORMALIZE_STEPS = ("normalizer_processor", "unnormalizer_processor")


@dataclass(frozen=True)
class FeatureNorm:
    """One feature's transform: its mode and the two statistics it uses (None for IDENTITY)."""

    mode: str
    low: torch.Tensor | None = None  # mean, min, q01 or q10
    high: torch.Tensor | None = None  # std, max, q99 or q90
    eps: float = 1e-8

    def to(self, device: torch.device, dtype: torch.dtype) -> FeatureNorm:
        if self.low is None or self.high is None:
            return self
        return FeatureNorm(self.mode, self.low.to(device, dtype), self.high.to(device, dtype), self.eps)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.low is None or self.high is None:
            return x
        if self.mode == "MEAN_STD":
            return (x - self.low) / (self.high + self.eps)
        return 2 * (x - self.low) / self._range() - 1

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.low is None or self.high is None:
            return x
        if self.mode == "MEAN_STD":
            return x * self.high + self.low
        return (x + 1) / 2 * self._range() + self.low

    def _range(self) -> torch.Tensor:
        assert self.low is not None and self.high is not None
        span = self.high - self.low
        return torch.where(span == 0, torch.full_like(span, self.eps), span)


def read_processor(path: Path, step_name: str) -> dict[str, FeatureNorm]:
    """The per-feature transforms of the ``step_name`` step of one processor JSON file (e.g.
    ``policy_preprocessor.json``), its statistics read from the step's ``state_file`` beside it."""
    data = read_json_object(path, ("steps",))
    steps = data["steps"]
    if not isinstance(steps, list):
        raise ConfigError(f"'steps' in {path}", steps, "a list of processor steps")
    found: dict[str, FeatureNorm] | None = None
    for index, step in enumerate(steps):
        name = step.get("registry_name") if isinstance(step, dict) else None
        if name in PASSIVE_STEPS:
            rename = (step.get("config") or {}).get("rename_map")
            if rename:
                raise ConfigError(f"step {index} of {path}", f"rename_map={rename}",
                                  "an empty rename_map (observations arrive under the policy's own feature keys)")
            continue
        if name not in NORMALIZE_STEPS:
            raise ConfigError(f"step {index} of {path}", name, one_of(PASSIVE_STEPS + NORMALIZE_STEPS))
        if name == step_name:
            found = _normalizer(path, index, step)
    if found is None:
        raise ConfigError("checkpoint file", str(path), f"a processor with a {step_name!r} step")
    return found


def _normalizer(path: Path, index: int, step: Mapping[str, Any]) -> dict[str, FeatureNorm]:
    where = f"step {index} ({step['registry_name']}) of {path}"
    config = step.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("features"), dict):
        raise ConfigError(where, config, "a config with 'features' and 'norm_map'")
    norm_map = config.get("norm_map") or {}
    eps = float(config.get("eps", 1e-8))
    stats: dict[str, torch.Tensor] = {}
    if step.get("state_file"):
        state_path = path.parent / str(step["state_file"])
        stats = read_weights(state_path, load_file, "a safetensors file of normaliser statistics")
    norms = {}
    for key, feature in config["features"].items():
        kind = feature.get("type") if isinstance(feature, dict) else None
        mode = norm_map.get(kind, "IDENTITY")
        if mode not in MODES:
            raise ConfigError(f"norm_map[{kind!r}] in {where}", mode, one_of(MODES))
        if mode == "IDENTITY":
            norms[key] = FeatureNorm(mode)
            continue
        low_name, high_name = MODE_STATS[mode]
        low, high = stats.get(f"{key}.{low_name}"), stats.get(f"{key}.{high_name}")
        if low is None and high is None:
            norms[key] = FeatureNorm("IDENTITY")  # LeRobot leaves a feature without statistics as it is
            continue
        if low is None or high is None:
            raise ConfigError(f"statistics of {key!r} in {where}", sorted(k for k in stats if k.startswith(key + ".")),
                              f"both {key}.{low_name} and {key}.{high_name} ({mode})")
        norms[key] = FeatureNorm(mode, low.to(torch.float32), high.to(torch.float32), eps)
    return norms
