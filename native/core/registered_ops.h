// libtorch operators that are not in its C++ API but in its dispatcher (oneDNN's fused and
// packed-weight ops), looked up by name where this build registers them for the CPU.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>

namespace fcn {

/// The operator name.overload when this libtorch has a CPU kernel for it (builds without
/// oneDNN have none), for boxed calls.
inline std::optional<c10::OperatorHandle> findCpuOp(const char* name, const char* overload) {
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle || !handle->hasKernelForDispatchKey(c10::DispatchKey::CPU)) return std::nullopt;
  return handle;
}

/// findCpuOp typed as Fn for unboxed calls; none when the schema does not match Fn.
template <class Fn>
std::optional<c10::TypedOperatorHandle<Fn>> findCpuOp(const char* name, const char* overload) {
  try {
    auto handle = findCpuOp(name, overload);
    if (!handle) return std::nullopt;
    return handle->template typed<Fn>();
  } catch (const c10::Error&) {  // a signature this build does not match
    return std::nullopt;
  }
}

}  // namespace fcn
