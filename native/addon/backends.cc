// torch.backends: the speed-up switches of core/backends.h as JS properties, and the
// caching CPU allocator's counters; torch.setAutocast/getAutocast/autocastRuns, the
// mixed-precision setting of core/autocast.h; torch.cpuCapabilities, the CPU's instruction sets.
#include "core/backends.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "core/autocast.h"
#include "core/cpu_allocator.h"
#include "models/cuda_graphs.h"
#include "models/fused_conv.h"

namespace fcn {

namespace {

template <std::atomic<bool>& flag>
void property(Napi::Env env, Napi::Object target, const char* name) {
  auto get = Napi::Function::New(
      env, [](const Napi::CallbackInfo& info) -> Napi::Value { return Napi::Boolean::New(info.Env(), flag.load()); });
  auto set = Napi::Function::New(env, [name](const Napi::CallbackInfo& info) -> Napi::Value {
    flag.store(toBool(info[0], name));
    return info.Env().Undefined();
  });
  auto descriptor = Napi::Object::New(env);
  descriptor.Set("get", get);
  descriptor.Set("set", set);
  descriptor.Set("enumerable", true);
  env.Global()
      .Get("Object")
      .As<Napi::Object>()
      .Get("defineProperty")
      .As<Napi::Function>()
      .Call({target, Napi::String::New(env, name), descriptor});
}

c10::DeviceType autocastDeviceType(const Napi::Value& v) {
  std::string type = toString(v, "deviceType");
  if (type == "cpu") return c10::DeviceType::CPU;
  if (type == "cuda") return c10::DeviceType::CUDA;
  throw std::invalid_argument("deviceType: expected 'cpu' or 'cuda', got '" + type + "'");
}

Napi::Value setAutocast(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    auto type = autocastDeviceType(info[0]);
    std::optional<at::ScalarType> dtype;
    if (!info[1].IsNull()) {
      std::string name = toString(info[1], "dtype");
      if (name != "bfloat16") throw std::invalid_argument("dtype: expected 'bfloat16' or null, got '" + name + "'");
      dtype = at::kBFloat16;
    }
    autocast::setDtype(type, dtype);
    return info.Env().Undefined();
  });
}

Napi::Value getAutocast(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto dtype = autocast::dtypeFor(autocastDeviceType(info[0]));
    if (!dtype) return info.Env().Null();
    return Napi::String::New(info.Env(), "bfloat16");
  });
}

/// The precision forwards on a device type really run in (autocast::effectiveDtype).
Napi::Value autocastRuns(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto dtype = autocast::effectiveDtype(autocastDeviceType(info[0]));
    return Napi::String::New(info.Env(), dtype ? "bfloat16" : "float32");
  });
}

/// The CPU's name and the instruction sets that decide the precisions worth running
/// (libtorch's cpuinfo query, read once: core/autocast.h).
Napi::Value cpuCapabilities(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto out = Napi::Object::New(info.Env());
    out.Set("name", autocast::cpuName());
    for (const auto& [key, flagName] :
         std::initializer_list<std::pair<const char*, const char*>>{{"avx2", "avx2"},
                                                                    {"avx512", "avx512_f"},
                                                                    {"avx512Vnni", "avx512_vnni"},
                                                                    {"avx512Bf16", "avx512_bf16"},
                                                                    {"amxBf16", "amx_bf16"},
                                                                    {"amxInt8", "amx_int8"}}) {
      out.Set(key, Napi::Boolean::New(info.Env(), autocast::cpuFlag(flagName)));
    }
    out.Set("bfloat16Units", Napi::Boolean::New(info.Env(), autocast::cpuHasBfloat16Units()));
    return out;
  });
}

}  // namespace

void initBackends(Napi::Env env, Napi::Object exports) {
  auto object = Napi::Object::New(env);
  property<backends::subpixelUpsampling>(env, object, "subpixelUpsampling");
  property<backends::channelsLast>(env, object, "channelsLast");
  property<backends::cachingCpuAllocator>(env, object, "cachingCpuAllocator");
  property<backends::cudaGraphs>(env, object, "cudaGraphs");
  property<backends::fusedInference>(env, object, "fusedInference");
  property<backends::emulatedBfloat16>(env, object, "emulatedBfloat16");
  object.Set("emptyCpuCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               releaseCachedCpuMemory();
               return info.Env().Undefined();
             }));
  object.Set("cachedCpuBytes", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               return Napi::Number::New(info.Env(), static_cast<double>(cachedCpuBytes()));
             }));
  object.Set("cudaGraphsKept", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               return Napi::Number::New(info.Env(), static_cast<double>(cudaGraphs::kept()));
             }));
  object.Set("fusedConvolutionCalls", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               return Napi::Number::New(info.Env(), static_cast<double>(fusedConvolutionCalls()));
             }));
  object.Set("fusedConvolutionsKept", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               return Napi::Number::New(info.Env(), static_cast<double>(fusedConvolutionsKept()));
             }));
  exports.Set("backends", object);
  exports.Set("setAutocast", Napi::Function::New(env, setAutocast));
  exports.Set("getAutocast", Napi::Function::New(env, getAutocast));
  exports.Set("autocastRuns", Napi::Function::New(env, autocastRuns));
  exports.Set("cpuCapabilities", Napi::Function::New(env, cpuCapabilities));
}

}  // namespace fcn
