// ProcessGroupNCCL needs nccl.h (the nvidia-nccl wheel beside a CUDA torch); CMakeLists.txt
// compiles this file only when it finds a CUDA libtorch and that header.
#ifndef USE_C10D_NCCL  // libtorch's CMake config may define it already
#define USE_C10D_NCCL
#endif
#include "distributed/nccl_backend.h"

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace fcn {

c10::intrusive_ptr<c10d::Backend> makeNcclBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

}  // namespace fcn
