// Mixed precision as PyTorch's torch.autocast: a process-wide choice, per device type, of the
// reduced dtype that models' forwards run in (bfloat16), applied by runModel around each
// forward with a Scope. Backward and the optimizer step run outside it, as in PyTorch.
// The state is process-wide rather than thread-local because every forward runs on the one
// torch thread (or a data-parallel replica's), never where the user set it.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace fcn::autocast {

/// The reduced dtype of forwards on deviceType (CPU or CUDA), or nullopt: full precision.
std::optional<at::ScalarType> dtypeFor(c10::DeviceType deviceType);

/// Sets it (nullopt turns autocast off). Throws std::invalid_argument for another device type
/// or a dtype that is not bfloat16.
void setDtype(c10::DeviceType deviceType, std::optional<at::ScalarType> dtype);

/// Autocast for device's type on this thread while alive, if one is set for it; the
/// previous state comes back, and the cast cache is cleared when the outermost scope ends.
class Scope {
 public:
  explicit Scope(const c10::Device& device);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  /// Whether this scope turned autocast on.
  bool active() const { return active_; }

 private:
  c10::DeviceType type_;
  bool active_ = false;
  bool wasEnabled_ = false;
  at::ScalarType previousDtype_ = at::kFloat;
};

}  // namespace fcn::autocast
