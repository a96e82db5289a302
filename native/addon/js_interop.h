// Between JS values and C++, for every binding file: the per-environment addon state, the
// guard that turns C++ and libtorch exceptions into JS errors, and the argument readers
// whose TypeErrors name the argument, what was expected and what was given.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/describe.h"

namespace fcn {

class EnvLink;
class TensorRegistry;

/// State of one JS environment (the main thread or a worker_thread): the addon is
/// context-aware, so every class constructor lives here rather than in a static.
struct AddonData {
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference moduleClass;
  Napi::FunctionReference optimizerClass;
  Napi::FunctionReference processGroupClass;
  std::shared_ptr<EnvLink> torchLink;       // see torch_thread.h
  std::shared_ptr<TensorRegistry> tensors;  // see tensor.h
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

/// Runs fn and rethrows any C++ exception as a JS Error (a Napi::Error passes unchanged).
template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, messageOf(e));
  } catch (...) {
    throw Napi::Error::New(env, "unknown native error");
  }
}

/// Throws a JS TypeError naming the argument, what was expected and what was given.
[[noreturn]] void throwType(Napi::Env env, const std::string& what, const std::string& expected,
                            const Napi::Value& given);

int64_t toInt(const Napi::Value& v, const std::string& what);
double toDouble(const Napi::Value& v, const std::string& what);
/// Three numbers [a, b, c] (a per-channel mean or std).
std::array<double, 3> toDoubleTriple(const Napi::Value& v, const std::string& what);
bool toBool(const Napi::Value& v, const std::string& what);
std::string toString(const Napi::Value& v, const std::string& what);
std::vector<int64_t> toIntList(const Napi::Value& v, const std::string& what);
Napi::Array fromIntList(Napi::Env env, c10::IntArrayRef values);
/// An array of strings, for lists of names.
Napi::Array fromStrings(Napi::Env env, const std::vector<std::string>& values);
/// Whether v is neither undefined nor null.
inline bool given(const Napi::Value& v) { return !v.IsUndefined() && !v.IsNull(); }

/// 'float32' and friends, as the TypeScript API spells them.
at::ScalarType toDtype(const Napi::Value& v);

/// 'cpu', 'cuda' or 'cuda:N'; says plainly when CUDA is asked for but not usable.
c10::Device toDevice(const Napi::Value& v);

}  // namespace fcn
