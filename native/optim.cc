#include "optim.h"

#include "common.h"
#include "tensor.h"

namespace fcn {

void Optimizer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeSGD",
                                   {
                                       InstanceMethod<&Optimizer::step>("step"),
                                       InstanceMethod<&Optimizer::zeroGrad>("zeroGrad"),
                                       InstanceMethod<&Optimizer::setLr>("setLr"),
                                   });
  addonData(env).optimizerClass = Napi::Persistent(cls);
  exports.Set("NativeSGD", cls);
}

/// new NativeSGD(params, {lr, momentum, dampening, weightDecay, nesterov})
Optimizer::Optimizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Optimizer>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throwType(env, "params", "an array of Tensors", info[0]);
  if (!info[1].IsObject()) throwType(env, "options", "an object", info[1]);
  auto list = info[0].As<Napi::Array>();
  std::vector<at::Tensor> params;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    at::Tensor p = Tensor::unwrap(list.Get(i), "params[" + std::to_string(i) + "]");
    if (!p.requires_grad()) {
      throw Napi::Error::New(env, "params[" + std::to_string(i) +
                                      "] does not require grad; an optimizer updates "
                                      "only trainable tensors");
    }
    params.push_back(p);
  }
  auto o = info[1].As<Napi::Object>();
  torch::optim::SGDOptions options(toDouble(o.Get("lr"), "lr"));
  options.momentum(toDouble(o.Get("momentum"), "momentum"))
      .dampening(toDouble(o.Get("dampening"), "dampening"))
      .weight_decay(toDouble(o.Get("weightDecay"), "weightDecay"))
      .nesterov(toBool(o.Get("nesterov"), "nesterov"));
  optimizer_ = guard(env, [&] { return std::make_shared<torch::optim::SGD>(params, options); });
}

Napi::Value Optimizer::step(const Napi::CallbackInfo& info) {
  guard(info.Env(), [&] { optimizer_->step(); });
  return info.Env().Undefined();
}

Napi::Value Optimizer::zeroGrad(const Napi::CallbackInfo& info) {
  guard(info.Env(), [&] { optimizer_->zero_grad(true); });
  return info.Env().Undefined();
}

Napi::Value Optimizer::setLr(const Napi::CallbackInfo& info) {
  double lr = toDouble(info[0], "lr");
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
  return info.Env().Undefined();
}

}  // namespace fcn
