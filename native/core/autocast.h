// Mixed precision as PyTorch's torch.autocast: a process-wide choice, per device type, of the
// reduced dtype that models' forwards run in (bfloat16), applied by runModel around each
// forward with a Scope. Backward and the optimizer step run outside it, as in PyTorch.
// The state is process-wide rather than thread-local because every forward runs on the one
// torch thread (or a data-parallel replica's), never where the user set it.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace fcn::autocast {

/// The reduced dtype asked for forwards on deviceType (CPU or CUDA), or nullopt: full
/// precision. An Override on this thread takes the place of the process-wide choice.
std::optional<at::ScalarType> dtypeFor(c10::DeviceType deviceType);

/// An instruction-set flag of libtorch's cpuinfo query ("avx2", "avx512_bf16", "amx_bf16", ...),
/// and the CPU's name; read once.
bool cpuFlag(const std::string& name);
std::string cpuName();

/// Whether this CPU has bfloat16 dot-product instructions (AVX-512 BF16 or AMX-BF16), which
/// oneDNN's bfloat16 convolutions and matrix products need to be faster than float32.
bool cpuHasBfloat16Units();

/// The reduced dtype forwards on deviceType really run in: dtypeFor, except that CPU autocast
/// runs float32 (nullopt) on a CPU without bfloat16 units, where every bfloat16 convolution is
/// emulated and slower than float32 (measured: predict 14x slower on an AVX2 EPYC), unless
/// backends::emulatedBfloat16 asks for it anyway.
std::optional<at::ScalarType> effectiveDtype(c10::DeviceType deviceType);

/// Sets it (nullopt turns autocast off). Throws std::invalid_argument for another device type
/// or a dtype that is not bfloat16.
void setDtype(c10::DeviceType deviceType, std::optional<at::ScalarType> dtype);

/// For the calls made on this thread while alive (one job on the torch thread), forwards use
/// dtype (nullopt: float32) instead of the process-wide choice: predict's `precision`.
class Override {
 public:
  explicit Override(std::optional<at::ScalarType> dtype);
  ~Override();
  Override(const Override&) = delete;
  Override& operator=(const Override&) = delete;

 private:
  int previous_;
};

/// Autocast for device's type on this thread while alive, if effectiveDtype gives one; the
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
