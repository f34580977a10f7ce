#!/usr/bin/env bash
# The OpenVLA-7B-shaped check on a CUDA machine, from the checkout, in one command (about 6 minutes):
#
#   tools/openvla_7b_gpu_check.sh [RESULTS]      # RESULTS: default $OUT, else /tmp/openvla_7b_check
#
# 1. tools/openvla_shaped.py writes a 7.5 B-parameter checkpoint in openvla/openvla-7b's layout (random bf16
#    weights, 15 GB) into WORK (default /tmp/openvla_7b_shaped; kept, so a rerun skips this step);
# 2. bench.gpu_models --model loads it on the GPU (bf16, tensor by tensor: the line "load ... s, peak host
#    RSS a -> b GiB, GPU c GiB" is the no-fp32-copy check) and measures SEQ against Auras (decisions/s,
#    ratio, age, peak GPU memory), writing gpu_models.log and openvla_7b.json into RESULTS.
# Uses the machine's Python (PY, default python3) with CUDA torch, transformers and safetensors; no ROS.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-python3}
WORK=${WORK:-/tmp/openvla_7b_shaped}
RESULTS=${1:-${OUT:-/tmp/openvla_7b_check}}
mkdir -p "$RESULTS"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -f "$WORK/model.safetensors.index.json" ]; then
  timeout 300 "$PY" "$ROOT/tools/openvla_shaped.py" "$WORK" 2>&1 | tee "$RESULTS/openvla_shaped.log" || exit 1
fi
timeout 420 "$PY" -m auras_ros.bench.gpu_models --model "$WORK" --instruction "pick up the red block" \
  --unnorm-key tiny_a --executors seq auras:1+7:f-1:a0 --decisions 20 --repeats 3 --budget-s 240 \
  --json "$RESULTS/openvla_7b.json" 2>&1 | tee "$RESULTS/gpu_models.log"
