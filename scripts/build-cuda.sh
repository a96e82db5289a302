#!/usr/bin/env bash
# Builds the CUDA variant of the addon from the same sources: torch 2.14.1 (CUDA) and its
# nvidia-* runtime wheels go into .venv-cuda (from pip's configured index, no retries), and
# cmake-js builds build-cuda/Release/fcn_torch.node against that libtorch. The nvidia
# libraries sit beside torch in site-packages, where libtorch's own rpath finds them.
# Needs nvcc (the CUDA toolkit) but no GPU. Use the result with
#   FCN_TORCH_ADDON=build-cuda/Release/fcn_torch.node node your-script.js
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-cuda
version=${FCN_TORCH_CUDA_VERSION:-2.14.1}
# The torch package is located without importing it (its Python-only needs are not installed).
find_torch='import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))'
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "$find_torch" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  # torch itself without its Python-only needs (cuda-bindings, triton), then the CUDA runtime
  # libraries that libtorch_cuda links: the cuda-toolkit extras and the cu13 wheels.
  "$venv/bin/pip" install --retries 0 -q --no-deps "torch==$version"
  "$venv/bin/pip" install --retries 0 -q \
    'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]' \
    nvidia-cudnn-cu13 nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvshmem-cu13
fi
torch_dir=$("$venv/bin/python" -c "$find_torch")
cuda_root=${CUDA_HOME:-/usr/local/cuda}
nvcc=$cuda_root/bin/nvcc
[[ -x $nvcc ]] || { echo "build-cuda: no nvcc in $cuda_root/bin; set CUDA_HOME to the CUDA toolkit" >&2; exit 1; }
npx cmake-js compile --out build-cuda \
  --CDLIBTORCH_DIR="$torch_dir" \
  --CDTORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" \
  --CDCUDA_TOOLKIT_ROOT_DIR="$cuda_root" \
  --CDCUDAToolkit_ROOT="$cuda_root" \
  --CDCMAKE_CUDA_COMPILER="$nvcc"
addon=build-cuda/Release/fcn_torch.node
echo "built $addon; libtorch: $torch_dir"
# Links against libtorch_cuda and resolves every symbol at load time:
node -e "const a = require('./$addon'); console.log('loaded: CUDA build =', a.cudaBuild, '; GPUs visible =', a.cudaInfo().deviceCount)"
