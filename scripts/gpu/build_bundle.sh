#!/usr/bin/env bash
# Builds what the offline GPU host (Python 3.12, torch 2.11 + CUDA 13, no network) needs to run medaug's
# GPU tests and bench/generate_overhead.py, in transfers of < 64 MiB:
#   .gpu/part1  vLLM 0.26.0 native sm_90 kernels (../shared/gpu/build_artifacts.sh)      ≈ 23 MB
#   .gpu/part2  vLLM python tree + its small deps + installer                             ≈ 17 MB
#   .gpu/part3  Ray 2.60 (slimmed: no Java jars, rllib, serve, tune, llm) + jsonschema      ≈ 32 MB
# Usage (on a machine that reaches PyPI, from the repo root): scripts/gpu/build_bundle.sh [SHARED_GPU_DIR]
# Then see docs/gpu.md for the two device calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${1:-../shared/gpu}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
[ -d .gpu/part1 ] && [ -d .gpu/part2 ] || bash "$SHARED/build_artifacts.sh" .gpu
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
P=""
for n in 2_17 2_24 2_26 2_27 2_28 2_31 2_34 2_35; do P="$P --platform manylinux_${n}_x86_64"; done
P="$P --platform manylinux2014_x86_64"
dl() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $P -d "$W/$1" "${@:2}"; }
dl ray ray==2.60.0
# What the generation path (jobs.generate without `curate`, tests/gpu, bench/generate_overhead.py) needs and the
# host image lacks (KINDS.md lists what it has); pydantic comes with vLLM's deps in part2. Curation's deps
# (polars alone is 54 MB) stay behind: jobs/config.py imports them only when a config has `curate`.
dl wheels jsonschema jsonschema-specifications referencing rpds-py 2>&1 | grep -v Location || true
mkdir -p "$W/rx" && (cd "$W/rx" && unzip -q ../ray/ray-2.60.0-*.whl)
rm -rf .gpu/part3 && mkdir -p .gpu/part3
(cd "$W/rx" && tar cf - --exclude=ray/jars --exclude=ray/rllib --exclude=ray/serve --exclude=ray/tune --exclude=ray/llm \
  --exclude='__pycache__' . | xz -T0 -6 > "$OLDPWD/.gpu/part3/ray-slim.tar.xz")
cp -r "$W/wheels" .gpu/part3/wheels
du -sh .gpu/part1 .gpu/part2 .gpu/part3
