#include "core/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <stdexcept>

namespace fcn {

bool cudaBuilt() { return at::detail::getCUDAHooks().isBuilt(); }

int64_t cudaDeviceCount() { return at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0; }

c10::Device parseDevice(const std::string& spec) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  bool isCuda = spec == "cuda" || spec.rfind("cuda:", 0) == 0;
  if (!isCuda) {
    throw std::invalid_argument("unknown device '" + spec + "': expected 'cpu', 'cuda' or 'cuda:N'");
  }
  int64_t index = 0;
  if (spec.size() > 5) {
    std::string digits = spec.substr(5);
    if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) {
      throw std::invalid_argument("unknown device '" + spec + "': expected 'cpu', 'cuda' or 'cuda:N'");
    }
    index = std::stoll(digits);
  }
  if (!cudaBuilt()) {
    throw std::runtime_error("device '" + spec +
                             "' asked for, but this build of fcn-torch has no CUDA support (it was built against a "
                             "CPU-only libtorch); install the CUDA build as docs/building.md's 'CUDA' section says");
  }
  int64_t count = cudaDeviceCount();
  if (index >= count) {
    throw std::runtime_error(
        "device '" + spec + "' asked for, but only " + std::to_string(count) +
        " CUDA device(s) are visible (this is a CUDA build; check the GPU driver and CUDA_VISIBLE_DEVICES)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace fcn
