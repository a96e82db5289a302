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
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$venv"
  # torch itself without its Python-only needs (cuda-bindings, triton), then the CUDA runtime
  # libraries that libtorch_cuda links: the cuda-toolkit extras and the cu13 wheels.
  "$venv/bin/pip" install --retries 0 -q --no-deps "torch==$version"
  "$venv/bin/pip" install --retries 0 -q \
    'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]' \
    nvidia-cudnn-cu13 nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvshmem-cu13
fi
torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[[ -x $nvcc ]] || { echo "build-cuda: nvcc not found; install the CUDA toolkit" >&2; exit 1; }
cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
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
