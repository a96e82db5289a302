// Weight files: reads safetensors and torch.save files (format told by content, not by
// name) and writes safetensors, on the torch thread.
#include "serialization.h"

#include <filesystem>
#include <fstream>

#include "common.h"
#include "safetensors.h"
#include "tensor.h"
#include "torch_save.h"
#include "torch_thread.h"

namespace fcn {

namespace {

NamedTensors readWeights(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error("no weights file at '" + path + "'");
  uint64_t size = std::filesystem::file_size(path);
  uint8_t head[9] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof head);
  try {
    if (safetensors::looksLike(head, static_cast<size_t>(in.gcount()), size)) return safetensors::read(path);
    return torch_save::read(path);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load '" + path + "': " + messageOf(e));
  }
}

Napi::Value loadWeights(const Napi::CallbackInfo& info) {
  std::string path = toString(info[0], "path");
  return runAsync(info.Env(), [path]() -> Settle {
    NamedTensors tensors = readWeights(path);
    return [tensors = std::move(tensors)](Napi::Env env) -> Napi::Value { return Tensor::wrapNamed(env, tensors); };
  });
}

/// loadMetadata(path) -> Promise<Record<string, string>>: a safetensors file's __metadata__.
Napi::Value loadMetadata(const Napi::CallbackInfo& info) {
  std::string path = toString(info[0], "path");
  return runAsync(info.Env(), [path]() -> Settle {
    std::map<std::string, std::string> metadata;
    try {
      metadata = safetensors::readMetadata(path);
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot read the metadata of '" + path + "': " + messageOf(e));
    }
    return [metadata = std::move(metadata)](Napi::Env env) -> Napi::Value {
      auto out = Napi::Object::New(env);
      for (const auto& [key, value] : metadata) out.Set(key, value);
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
    return [](Napi::Env env) { return env.Undefined(); };
  });
}

}  // namespace

void initSerialization(Napi::Env env, Napi::Object exports) {
  exports.Set("loadWeights", Napi::Function::New<loadWeights>(env));
  exports.Set("saveSafetensors", Napi::Function::New<saveSafetensors>(env));
  exports.Set("loadMetadata", Napi::Function::New<loadMetadata>(env));
}

}  // namespace fcn
