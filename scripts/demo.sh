#!/usr/bin/env bash
# Installs medaug into .venv, then runs the main job on its embedded default: local Ray (127.0.0.1 only),
# the CPU vLLM build with a tiny layout-trained test model, the team's demo seeds, and a SQLite review queue.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
. "${MEDAUG_VENV:-.venv}/bin/activate"
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
medaug demo "$@"
