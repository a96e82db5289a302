#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>

namespace fcn {

/// An optimizer handle over libtorch's torch::optim (SGD for now).
class Optimizer : public Napi::ObjectWrap<Optimizer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Optimizer(const Napi::CallbackInfo& info);
  /// The optimizer behind a JS handle; a TypeError names `what` otherwise.
  static std::shared_ptr<torch::optim::Optimizer> unwrap(const Napi::Value& v, const std::string& what);

 private:
  Napi::Value step(const Napi::CallbackInfo& info);
  Napi::Value zeroGrad(const Napi::CallbackInfo& info);
  Napi::Value setLr(const Napi::CallbackInfo& info);
  Napi::Value stateDict(const Napi::CallbackInfo& info);
  Napi::Value loadStateDict(const Napi::CallbackInfo& info);

  std::shared_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace fcn
