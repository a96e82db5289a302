// The Module handle: a JS object holding a shared libtorch module. Children returned to JS
// share the parent's parameters, as in PyTorch, because libtorch modules are shared_ptrs.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <string>

namespace fcn {

class Module : public Napi::ObjectWrap<Module> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<torch::nn::Module> module);
  static std::shared_ptr<torch::nn::Module> unwrap(const Napi::Value& v, const std::string& what);

  explicit Module(const Napi::CallbackInfo& info);

 private:
  Napi::Value kind(const Napi::CallbackInfo& info);
  Napi::Value forward(const Napi::CallbackInfo& info);
  Napi::Value forwardAsync(const Napi::CallbackInfo& info);
  Napi::Value forwardOutputs(const Napi::CallbackInfo& info);
  Napi::Value forwardOutputsAsync(const Napi::CallbackInfo& info);
  Napi::Value namedChildren(const Napi::CallbackInfo& info);
  Napi::Value namedParameters(const Napi::CallbackInfo& info);
  Napi::Value namedBuffers(const Napi::CallbackInfo& info);
  Napi::Value stateDict(const Napi::CallbackInfo& info);
  Napi::Value loadStateDict(const Napi::CallbackInfo& info);
  Napi::Value train(const Napi::CallbackInfo& info);
  Napi::Value isTraining(const Napi::CallbackInfo& info);
  Napi::Value to(const Napi::CallbackInfo& info);
  Napi::Value zeroGrad(const Napi::CallbackInfo& info);
  Napi::Value addModule(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  /// The module, or a thrown JS Error once this handle was disposed.
  const std::shared_ptr<torch::nn::Module>& held(Napi::Env env) const;

  std::shared_ptr<torch::nn::Module> module_;
};

}  // namespace fcn
