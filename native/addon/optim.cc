#include "addon/optim.h"

#include <sstream>

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"

namespace fcn {

void initOptimizerClass(Napi::Env env, Napi::Object exports) { Optimizer::Init(env, exports); }

namespace {

std::vector<at::Tensor> allParams(torch::optim::Optimizer& o) {
  std::vector<at::Tensor> out;
  for (auto& group : o.param_groups()) {
    for (auto& p : group.params()) out.push_back(p);
  }
  return out;
}

}  // namespace

std::shared_ptr<torch::optim::Optimizer> Optimizer::unwrap(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).optimizerClass.Value())) {
    throwType(env, what, "an optimizer (optim.SGD)", v);
  }
  return Unwrap(v.As<Napi::Object>())->optimizer_;
}

void Optimizer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeSGD",
                                   {
                                       InstanceMethod<&Optimizer::step>("step"),
                                       InstanceMethod<&Optimizer::zeroGrad>("zeroGrad"),
                                       InstanceMethod<&Optimizer::setLr>("setLr"),
                                       InstanceMethod<&Optimizer::stateDict>("stateDict"),
                                       InstanceMethod<&Optimizer::loadStateDict>("loadStateDict"),
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
  withModelLock(info.Env(), [&] { optimizer_->step(); });
  return info.Env().Undefined();
}

Napi::Value Optimizer::zeroGrad(const Napi::CallbackInfo& info) {
  withModelLock(info.Env(), [&] { optimizer_->zero_grad(true); });
  return info.Env().Undefined();
}

Napi::Value Optimizer::setLr(const Napi::CallbackInfo& info) {
  double lr = toDouble(info[0], "lr");
  withModelLock(info.Env(), [&] {
    for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
  });
  return info.Env().Undefined();
}

/// The per-parameter state as PyTorch's state_dict()['state'] names it, flattened:
/// "state.<index>.momentum_buffer" (index in parameter order); SGD without momentum has none.
Napi::Value Optimizer::stateDict(const Napi::CallbackInfo& info) {
  NamedTensors entries;
  auto params = allParams(*optimizer_);
  auto& state = optimizer_->state();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = state.find(params[i].unsafeGetTensorImpl());
    if (it == state.end()) continue;
    const auto& sgd = static_cast<const torch::optim::SGDParamState&>(*it->second);
    if (sgd.momentum_buffer().defined()) {
      entries.emplace_back("state." + std::to_string(i) + ".momentum_buffer", sgd.momentum_buffer());
    }
  }
  return Tensor::wrapNamed(info.Env(), entries);
}

/// Restores what stateDict() gave; names and shapes are checked before anything changes.
Napi::Value Optimizer::loadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NamedTensors entries = Tensor::unwrapNamed(info[0], "stateDict");
  auto params = allParams(*optimizer_);
  std::vector<std::pair<size_t, at::Tensor>> buffers;
  for (const auto& [name, tensor] : entries) {
    size_t index = 0;
    std::string rest;
    std::istringstream parse(name.rfind("state.", 0) == 0 ? name.substr(6) : "");
    if (!(parse >> index) || !std::getline(parse, rest) || rest != ".momentum_buffer" || index >= params.size()) {
      throw Napi::Error::New(env, "optimizer state: unexpected entry '" + name + "' (expected state.<0.." +
                                      std::to_string(params.size() - 1) + ">.momentum_buffer)");
    }
    if (tensor.sizes() != params[index].sizes()) {
      throw Napi::Error::New(env, "optimizer state: '" + name + "' has shape " + shapeString(tensor) +
                                      " but parameter " + std::to_string(index) + " has " + shapeString(params[index]));
    }
    buffers.emplace_back(index, tensor);
  }
  withModelLock(env, [&] {
    auto& state = optimizer_->state();
    state.clear();
    for (const auto& [index, tensor] : buffers) {
      auto sgd = std::make_unique<torch::optim::SGDParamState>();
      sgd->momentum_buffer(tensor.detach().to(params[index].options()).clone());
      state[params[index].unsafeGetTensorImpl()] = std::move(sgd);
    }
  });
  return env.Undefined();
}

}  // namespace fcn
