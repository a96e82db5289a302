// The Module handle: a JS object holding a shared libtorch module. Children returned to JS
// share the parent's parameters, as in PyTorch, because libtorch modules are shared_ptrs.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <string>

namespace fcn {

/// Modules written for this addon (Sequential, ResNet, BasicBlock) implement this next to
/// torch::nn::Module, so that one call runs any of them.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual at::Tensor forward(const at::Tensor& input) = 0;
  virtual const char* kind() const = 0;
};

/// The kind name TypeScript uses for m ("Conv2d", "Sequential", ...).
std::string kindOf(const torch::nn::Module& m);
/// Runs m on input; throws for a module kind without a forward.
at::Tensor forwardModule(torch::nn::Module& m, const at::Tensor& input);
/// Copies src's parameters and buffers by name into dst (a module of the same structure,
/// moved to device first when given), with their requires_grad, and src's training mode.
/// The clone() of this addon's modules builds the structure and then calls this.
void copyState(const torch::nn::Module& src, torch::nn::Module& dst, const std::optional<torch::Device>& device);
/// Stores m's 4-d CPU parameters channels-last (NHWC), the layout oneDNN's convolutions run
/// fastest in, once; values, names and state dicts are unchanged. Every entry point that runs
/// a model (forward, training, prediction) calls this and then modelInput.
void useChannelsLast(torch::nn::Module& m);
/// x laid out as m's convolutions want it: channels-last when m's weights are, else x.
at::Tensor modelInput(torch::nn::Module& m, const at::Tensor& x);

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

  std::shared_ptr<torch::nn::Module> module_;
};

}  // namespace fcn
