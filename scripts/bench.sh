#!/usr/bin/env bash
# `npm run bench`: the chapter's FCN (inference, predict, train steps) against PyTorch eager,
# channels_last, torch.compile and ONNX Runtime, weight loading, start-up and memory against
# PyTorch, its float32, bfloat16 and int8 (quantizeInt8) runs and their ONNX Runtime exports
# against each other (scripts/bench-precision.ts), its
# ONNX export run by onnxruntime-node against our predict (scripts/bench-onnx.ts),
# then torchvision's segmentation models (scripts/bench-segmentation.ts, against eager and
# channels_last), the data pipeline (scripts/bench-data.sh) and distributed training against
# DistributedDataParallel (scripts/bench-distributed.ts), all on this machine in this run.
# Extra arguments go to scripts/bench.ts (--rounds N, --long, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/python-env.sh)
node dist/scripts/bench.js "$python" "$@"
echo
node dist/scripts/bench-precision.js
echo
node dist/scripts/bench-onnx.js
echo
node dist/scripts/bench-segmentation.js "$python"
echo
bash scripts/bench-data.sh "" 3
echo
node dist/scripts/bench-distributed.js "$python"
