#!/usr/bin/env bash
# Regenerates test/fixtures with PyTorch (torch 2.13.0+cpu and safetensors in a scratch
# venv, installed from pip's configured index without retries).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-fixtures
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --retries 0 -q 'torch==2.13.0+cpu' safetensors numpy
fi
"$venv/bin/python" scripts/make_fixtures.py
