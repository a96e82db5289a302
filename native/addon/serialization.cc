// Weight files: reads safetensors and torch.save files (format told by content, not by
// name) and writes safetensors, on the torch thread.
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"
#include "core/safetensors.h"
#include "core/weights.h"

namespace fcn {

namespace {

/// loadWeights(path) -> Promise<{tensors: [[name, Tensor], ...], metadata: {key: value}}>
Napi::Value loadWeights(const Napi::CallbackInfo& info) {
  std::string path = toString(info[0], "path");
  return runAsync(info.Env(), [path]() -> Settle {
    auto file = std::make_shared<WeightsFile>(weights::read(path));
    return [file](Napi::Env env) -> Napi::Value {
      auto out = Napi::Object::New(env);
      out.Set("tensors", Tensor::wrapNamed(env, file->tensors));
      auto metadata = Napi::Object::New(env);
      for (const auto& [key, value] : file->metadata) metadata.Set(key, value);
      out.Set("metadata", metadata);
      return out;
    };
  });
}

Napi::Value saveSafetensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NamedTensors tensors = Tensor::unwrapNamed(info[0], "tensors");
  std::string path = toString(info[1], "path");
  std::map<std::string, std::string> metadata;
  if (info[2].IsObject()) {
    auto obj = info[2].As<Napi::Object>();
    auto keys = obj.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      metadata[key] = toString(obj.Get(key), "metadata." + key);
    }
  }
  return runAsync(env, [tensors = std::move(tensors), path, metadata]() -> Settle {
    safetensors::write(path, tensors, metadata);
    return settleUndefined();
  });
}

}  // namespace

void initSerialization(Napi::Env env, Napi::Object exports) {
  exports.Set("loadWeights", Napi::Function::New<loadWeights>(env));
  exports.Set("saveSafetensors", Napi::Function::New<saveSafetensors>(env));
}

}  // namespace fcn
