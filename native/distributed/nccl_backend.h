// The NCCL backend of c10d (CUDA tensors), compiled into CUDA builds only (FCN_TORCH_NCCL):
// the one file that names ProcessGroupNCCL, which lives in libtorch_cuda.so.
#pragma once

#include <chrono>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace fcn {

/// Connects rank to the others of a group of size through store; NCCL collectives on the
/// current CUDA device fail after timeout.
c10::intrusive_ptr<c10d::Backend> makeNcclBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout);

}  // namespace fcn
