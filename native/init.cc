// Weight initialisation: the chapter's bilinear kernel and torch.nn.init's in-place fillers.
#include "init.h"

#include "common.h"
#include "tensor.h"

namespace fcn {

at::Tensor bilinearKernel(int64_t inChannels, int64_t outChannels, int64_t kernelSize) {
  if (inChannels < 1 || outChannels < 1 || kernelSize < 1) {
    throw std::invalid_argument("bilinearKernel: channels and kernel size must be >= 1");
  }
  if (inChannels != outChannels && inChannels != 1 && outChannels != 1) {
    throw std::invalid_argument("bilinearKernel: inChannels (" + std::to_string(inChannels) + ") and outChannels (" +
                                std::to_string(outChannels) +
                                ") must be equal or one of them 1, as the chapter fills the (i, i) planes");
  }
  int64_t factor = (kernelSize + 1) / 2;
  at::Tensor og0 = at::arange(kernelSize).reshape({-1, 1});
  at::Tensor og1 = at::arange(kernelSize).reshape({1, -1});
  // Odd kernels: integer centre (int64 arithmetic, then true division); even: centre - 0.5.
  at::Tensor filt;
  if (kernelSize % 2 == 1) {
    int64_t center = factor - 1;
    filt = (1 - at::abs(og0 - center) / factor) * (1 - at::abs(og1 - center) / factor);
  } else {
    double center = static_cast<double>(factor) - 0.5;
    filt = (1 - at::abs(og0 - center) / factor) * (1 - at::abs(og1 - center) / factor);
  }
  at::Tensor weight = at::zeros({inChannels, outChannels, kernelSize, kernelSize});
  int64_t n = std::max(inChannels, outChannels);
  for (int64_t i = 0; i < n; ++i) {
    weight[inChannels == 1 ? 0 : i][outChannels == 1 ? 0 : i].copy_(filt);
  }
  return weight;
}

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
