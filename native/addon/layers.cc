// createModule(kind, options): the layers TypeScript builds from an options object, made by
// their kind in the registry (models/registry.h); options are read from the JS object.
// moduleKinds(): the registry's kinds, which the tests hold against TypeScript's classes.
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "models/registry.h"

namespace fcn {

namespace {

/// LayerOptions over a JS object (validated and defaulted by TypeScript already).
class JsLayerOptions final : public LayerOptions {
 public:
  explicit JsLayerOptions(Napi::Object obj) : obj_(obj) {}
  int64_t integer(const char* key) const override { return toInt(obj_.Get(key), key); }
  double number(const char* key) const override { return toDouble(obj_.Get(key), key); }
  bool flag(const char* key) const override { return toBool(obj_.Get(key), key); }
  std::string text(const char* key) const override { return toString(obj_.Get(key), key); }
  bool has(const char* key) const override { return obj_.Has(key) && !obj_.Get(key).IsUndefined(); }
  std::array<int64_t, 2> pair(const char* key) const override {
    auto values = toIntList(obj_.Get(key), key);
    if (values.size() != 2) throwType(obj_.Env(), key, "two integers [h, w]", obj_.Get(key));
    return {values[0], values[1]};
  }

 private:
  Napi::Object obj_;
};

Napi::Value createModule(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = toString(info[0], "kind");
  if (!info[1].IsObject()) throwType(env, "options", "an object", info[1]);
  JsLayerOptions options(info[1].As<Napi::Object>());
  return guard(env, [&] { return Module::wrap(env, createLayer(kind, options)); });
}

Napi::Value moduleKinds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<const ModuleKind*> kinds = allKinds();
  Napi::Array out = Napi::Array::New(env, kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    Napi::Object kind = Napi::Object::New(env);
    kind.Set("name", kinds[i]->name);
    kind.Set("creatable", kinds[i]->create != nullptr);
    kind.Set("exportsOnnx", kinds[i]->onnx != nullptr);
    out.Set(static_cast<uint32_t>(i), kind);
  }
  return out;
}

}  // namespace

void initLayers(Napi::Env env, Napi::Object exports) {
  exports.Set("createModule", Napi::Function::New<createModule>(env));
  exports.Set("moduleKinds", Napi::Function::New<moduleKinds>(env));
}

}  // namespace fcn
