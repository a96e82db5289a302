// quantizeInt8(model) -> Int8Model handle (models/int8_model.h), planned from a float model;
// int8Observe(int8, images) -> Promise<number of batches observed> and int8Freeze(int8) ->
// Promise<void> calibrate and quantize it on the torch thread.
#include "models/int8_model.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"

namespace fcn {

namespace {
std::shared_ptr<Int8Model> unwrapInt8(const Napi::Value& v) {
  auto model = std::dynamic_pointer_cast<Int8Model>(Module::unwrap(v, "model"));
  if (!model) throw Napi::TypeError::New(v.Env(), "model must be an Int8Model (made by quantizeInt8)");
  return model;
}

Napi::Value quantizeInt8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto source = Module::unwrap(info[0], "model");
  return withModelLock(env, [&] { return Module::wrap(env, std::make_shared<Int8Model>(source)); });
}

Napi::Value int8Observe(const Napi::CallbackInfo& info) {
  auto model = unwrapInt8(info[0]);
  at::Tensor images = Tensor::unwrap(info[1], "images");
  return runAsync(info.Env(), [model, images]() -> Settle {
    model->observe(images);
    int64_t observed = model->observed();
    return [observed](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(observed)); };
  });
}

Napi::Value int8Freeze(const Napi::CallbackInfo& info) {
  auto model = unwrapInt8(info[0]);
  return runAsync(info.Env(), [model]() -> Settle {
    model->freeze();
    return [](Napi::Env env) { return env.Undefined(); };
  });
}
}  // namespace

void initInt8Model(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeInt8", Napi::Function::New<quantizeInt8>(env));
  exports.Set("int8Observe", Napi::Function::New<int8Observe>(env));
  exports.Set("int8Freeze", Napi::Function::New<int8Freeze>(env));
}

}  // namespace fcn
