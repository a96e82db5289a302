// The optimizer handle: libtorch's torch::optim SGD or AdamW over parameter groups, each
// with its own options (PyTorch's param_groups), paired with src/optim.ts.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <string>

namespace fcn {

/// An optimizer handle over libtorch's torch::optim (SGD or AdamW).
class Optimizer : public Napi::ObjectWrap<Optimizer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Optimizer(const Napi::CallbackInfo& info);
  /// The optimizer behind a JS handle; a TypeError names `what` otherwise.
  static std::shared_ptr<torch::optim::Optimizer> unwrap(const Napi::Value& v, const std::string& what);

 private:
  Napi::Value step(const Napi::CallbackInfo& info);
  Napi::Value zeroGrad(const Napi::CallbackInfo& info);
  Napi::Value getLrs(const Napi::CallbackInfo& info);
  Napi::Value setLrs(const Napi::CallbackInfo& info);
  Napi::Value stateDict(const Napi::CallbackInfo& info);
  Napi::Value loadStateDict(const Napi::CallbackInfo& info);

  std::string kind_;  // "sgd" or "adamw"
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace fcn
