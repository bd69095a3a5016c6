#!/usr/bin/env bash
# Installs medaug with its test extras into .venv (and LLaMA-Factory into a virtualenv of its own, for the
# test that trains on a release), then runs lint, the format check, the layers contract and the test suite
# (not the gpu tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
scripts/install-llamafactory.sh
. "${MEDAUG_VENV:-.venv}/bin/activate"
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ruff check .
ruff format --check .
lint-imports  # the layers contract in pyproject.toml
python -m pytest -q "$@"
