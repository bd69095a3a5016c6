#!/usr/bin/env bash
# On the GPU host, in the repo root, after part3 was copied to /tmp/parts by an earlier call (docs/gpu.md):
# installs vLLM + Ray + medaug's wheels into /tmp/site, then runs the gpu tests and the generation benchmark.
set -uo pipefail
export SITE=/tmp/site
( cd .gpu/part2 && python3 install.py . vllm-0.26.0-py.tar.xz deps-site-py312.tar.xz ../part1/vllm-0.26.0-native-sm90.tar.xz ) || exit 1
tar xJf /tmp/parts/ray-slim.tar.xz -C "$SITE" || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" /tmp/parts/wheels/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 PYTHONUNBUFFERED=1
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
nvidia-smi -L
mkdir -p "${OUT:-/tmp/out}"
python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider 2>&1 | tee "${OUT:-/tmp/out}/gpu-tests.log"
python3 - <<'PY'
from jobs.tiny_model import build_tiny_model, qwen2_05b_shape
build_tiny_model("/tmp/qwen2-0.5b-shape", **qwen2_05b_shape())
PY
python3 bench/generate_overhead.py --model /tmp/qwen2-0.5b-shape --prompts 2048 --max-tokens 256 --repeats 3 \
  --max-model-len 4096 2>&1 | grep -vE '^(INFO|WARNING|\(EngineCore)' | tee "${OUT:-/tmp/out}/generate-overhead.log"
