#!/usr/bin/env bash
# Prints the path of a Python with torch 2.13.0+cpu, safetensors, numpy and pillow: the
# scratch venv .venv-fixtures, set up on first use from pip's configured index (local wheels
# on these machines; no retries, the public index is unreachable). Used by the fixture and
# benchmark scripts, never by the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-fixtures
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import torch, safetensors, numpy, PIL" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --retries 0 -q 'torch==2.13.0+cpu' safetensors numpy pillow >&2
fi
echo "$PWD/$venv/bin/python"
