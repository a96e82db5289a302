// Devices as the TypeScript API names them ('cpu', 'cuda', 'cuda:N'), checked against what
// this build and this machine have, so that asking for a GPU that is not there says so.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace fcn {

/// Whether this build links a CUDA libtorch (true without a GPU too).
bool cudaBuilt();

/// GPUs visible to this build (0 on a CPU build).
int64_t cudaDeviceCount();

/// 'cpu', 'cuda' or 'cuda:N'; throws saying plainly when CUDA is asked for but not usable.
c10::Device parseDevice(const std::string& spec);

}  // namespace fcn
