// Shared by every binding file: the per-environment addon state, the exception guard that
// turns C++ and libtorch errors into JS errors, and small argument readers.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fcn {

/// State of one JS environment (the main thread or a worker_thread): the addon is
/// context-aware, so every class constructor lives here rather than in a static.
struct AddonData {
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference moduleClass;
  Napi::FunctionReference optimizerClass;
  Napi::FunctionReference processGroupClass;
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

/// The message of a libtorch error without its C++ backtrace.
inline std::string messageOf(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    return c10->what_without_backtrace();
  }
  return e.what();
}

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
bool toBool(const Napi::Value& v, const std::string& what);
std::string toString(const Napi::Value& v, const std::string& what);
std::vector<int64_t> toIntList(const Napi::Value& v, const std::string& what);
Napi::Array fromIntList(Napi::Env env, c10::IntArrayRef values);

/// 'float32' and friends, as the TypeScript API spells them.
at::ScalarType toDtype(const Napi::Value& v);
const char* dtypeName(at::ScalarType type);

/// Whether this build links a CUDA libtorch (true without a GPU too).
bool cudaBuilt();

/// 'cpu', 'cuda' or 'cuda:N'; says plainly when CUDA is asked for but not usable.
c10::Device toDevice(const Napi::Value& v);
c10::Device parseDevice(const std::string& spec);

}  // namespace fcn
