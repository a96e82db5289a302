// Weight initialisation: the chapter's bilinear kernel and torch.nn.init's in-place fillers.
#include "models/init.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"

namespace fcn {

namespace {

Napi::Value bilinear(const Napi::CallbackInfo& info) {
  int64_t in = toInt(info[0], "inChannels"), out = toInt(info[1], "outChannels"), k = toInt(info[2], "kernelSize");
  return guard(info.Env(), [&] { return Tensor::wrap(info.Env(), bilinearKernel(in, out, k)); });
}

template <typename Fn>
Napi::Value fill(const Napi::CallbackInfo& info, Fn&& fn) {
  at::Tensor t = Tensor::unwrap(info[0], "tensor");
  guard(info.Env(), [&] {
    at::NoGradGuard noGrad;
    fn(t);
  });
  return info[0];
}

Napi::Value xavierUniform(const Napi::CallbackInfo& info) {
  double gain = toDouble(info[1], "gain");
  return fill(info, [&](at::Tensor& t) { torch::nn::init::xavier_uniform_(t, gain); });
}
Napi::Value xavierNormal(const Napi::CallbackInfo& info) {
  double gain = toDouble(info[1], "gain");
  return fill(info, [&](at::Tensor& t) { torch::nn::init::xavier_normal_(t, gain); });
}
Napi::Value constant(const Napi::CallbackInfo& info) {
  double value = toDouble(info[1], "value");
  return fill(info, [&](at::Tensor& t) { torch::nn::init::constant_(t, value); });
}
Napi::Value uniform(const Napi::CallbackInfo& info) {
  double a = toDouble(info[1], "a"), b = toDouble(info[2], "b");
  return fill(info, [&](at::Tensor& t) { torch::nn::init::uniform_(t, a, b); });
}
Napi::Value normal(const Napi::CallbackInfo& info) {
  double mean = toDouble(info[1], "mean"), std = toDouble(info[2], "std");
  return fill(info, [&](at::Tensor& t) { torch::nn::init::normal_(t, mean, std); });
}

}  // namespace

void initInit(Napi::Env env, Napi::Object exports) {
  auto init = Napi::Object::New(env);
  init.Set("bilinearKernel", Napi::Function::New<bilinear>(env));
  init.Set("xavierUniform_", Napi::Function::New<xavierUniform>(env));
  init.Set("xavierNormal_", Napi::Function::New<xavierNormal>(env));
  init.Set("constant_", Napi::Function::New<constant>(env));
  init.Set("uniform_", Napi::Function::New<uniform>(env));
  init.Set("normal_", Napi::Function::New<normal>(env));
  exports.Set("init", init);
}

}  // namespace fcn
