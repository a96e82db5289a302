#!/usr/bin/env bash
# Prints the path of a Python with torch 2.13.0+cpu, torchvision 0.28 (its reference model
# code; the wheel's compiled ops are for CUDA and are not loaded), safetensors, numpy,
# pillow, pycocotools (COCO's masks for the dataset fixtures), and onnx/onnxruntime for the
# benchmark's ONNX Runtime peer: the scratch venv
# .venv-fixtures, set up on first use from pip's configured index (local wheels on these
# machines; no retries, the public index is unreachable). Used by the fixture and benchmark
# scripts, never by the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-fixtures
if [[ ! -x $venv/bin/python ]] ||
  ! "$venv/bin/python" -c "import torch, safetensors, numpy, PIL, onnx, onnxruntime, pycocotools, importlib.util as u; assert u.find_spec('torchvision')" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --retries 0 -q 'torch==2.13.0+cpu' safetensors numpy pillow onnx onnxruntime onnxscript pycocotools >&2
  "$venv/bin/pip" install --retries 0 -q --no-deps 'torchvision==0.28.0' >&2
fi
echo "$PWD/$venv/bin/python"
