#include "core/tensor_data.h"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace fcn {

int64_t checkedNumel(const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      throw std::invalid_argument("shape[" + std::to_string(i) + "] is " + std::to_string(shape[i]) +
                                  ": sizes must be >= 0");
    }
    if (shape[i] != 0 && numel > std::numeric_limits<int64_t>::max() / shape[i]) {
      throw std::invalid_argument("shape has more elements than int64 can count");
    }
    numel *= shape[i];
  }
  return numel;
}

at::Tensor tensorFromBytes(const void* bytes, size_t byteLength, at::ScalarType dtype,
                           const std::vector<int64_t>& shape) {
  int64_t numel = checkedNumel(shape);
  auto itemSize = static_cast<int64_t>(c10::elementSize(dtype));
  if (numel > std::numeric_limits<int64_t>::max() / itemSize || static_cast<uint64_t>(numel * itemSize) != byteLength) {
    throw std::invalid_argument("data holds " + std::to_string(byteLength / itemSize) + " elements but shape [" +
                                c10::Join(", ", shape) + "] needs " + std::to_string(numel));
  }
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (byteLength > 0) std::memcpy(out.data_ptr(), bytes, byteLength);
  return out;
}

void copyTensorBytes(const at::Tensor& t, void* dst, size_t byteLength) {
  if (byteLength != t.nbytes()) {
    throw std::invalid_argument("destination holds " + std::to_string(byteLength) + " bytes, the tensor " +
                                std::to_string(t.nbytes()));
  }
  if (byteLength == 0) return;
  // A view over dst lets libtorch do the strided gather (and the device copy) in one step.
  at::Tensor out = at::from_blob(dst, t.sizes(), at::TensorOptions().dtype(t.scalar_type()));
  out.copy_(t.detach());
}

}  // namespace fcn
