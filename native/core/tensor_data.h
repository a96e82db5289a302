// Moving tensor data between raw bytes (JS TypedArrays, files) and libtorch tensors.
// Pure C++ (no Node-API), so the native tests exercise it directly.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fcn {

/// Number of elements of shape; throws std::invalid_argument for negative sizes or overflow.
int64_t checkedNumel(const std::vector<int64_t>& shape);

/// A new CPU tensor of dtype and shape holding a copy of bytes. The byte count must equal
/// numel * element size exactly; the error says both numbers when it does not.
at::Tensor tensorFromBytes(const void* bytes, size_t byteLength, at::ScalarType dtype,
                           const std::vector<int64_t>& shape);

/// Copies t's elements, row-major, into dst (exactly numel * element size bytes), from
/// any device or memory layout.
void copyTensorBytes(const at::Tensor& t, void* dst, size_t byteLength);

}  // namespace fcn

namespace fcn {
/// Named tensors in order: a state dict as files and modules hold it.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// What a weights file holds: its tensors, and its string metadata (safetensors'
/// `__metadata__`; none for torch.save files).
struct WeightsFile {
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;
};
}  // namespace fcn
