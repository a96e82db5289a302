#include "models/run_model.h"

#include "core/backends.h"
#include "core/describe.h"
#include "models/registry.h"

namespace fcn {

namespace {

/// Stores m's 4-d CPU parameters channels-last (NHWC), once; set_data keeps each
/// parameter's identity, so optimizers holding them are unaffected. The copies are made
/// outside inference mode even when a prediction runs in it: inference tensors as a
/// parameter's data would refuse the backward of every later training step.
void useChannelsLast(torch::nn::Module& m) {
  c10::InferenceMode normalTensors(false);
  at::NoGradGuard noGrad;
  for (auto& p : m.parameters(true)) {
    if (p.dim() == 4 && p.device().is_cpu() && !p.is_contiguous(at::MemoryFormat::ChannelsLast)) {
      p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
}

/// x laid out as m's convolutions want it: channels-last when m's weights are, else x.
at::Tensor layoutFor(torch::nn::Module& m, const at::Tensor& x) {
  if (x.dim() != 4 || !x.device().is_cpu()) return x;
  auto params = m.parameters(true);
  bool channelsLast = !params.empty() && params[0].dim() == 4 && !params[0].is_contiguous() &&
                      params[0].is_contiguous(at::MemoryFormat::ChannelsLast);
  return channelsLast ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

/// An input whose dtype the model's weights cannot take is named from the user's side.
void checkInputType(torch::nn::Module& model, const at::Tensor& input) {
  auto params = model.parameters(true);
  if (params.empty() || input.scalar_type() == params[0].scalar_type()) return;
  const char* weights = dtypeName(params[0].scalar_type());
  throw std::invalid_argument(std::string("input is ") + describeTensor(input) + ", but the model's weights are " +
                              weights + ": convert the input first (.to('" + weights + "'))");
}

}  // namespace

at::Tensor runModel(torch::nn::Module& model, const at::Tensor& input) {
  checkInputType(model, input);
  if (!backends::channelsLast) return forwardModule(model, input);
  useChannelsLast(model);
  return forwardModule(model, layoutFor(model, input));
}

NamedOutputs runModelOutputs(torch::nn::Module& model, const at::Tensor& input) {
  if (!backends::channelsLast) return forwardModuleOutputs(model, input);
  useChannelsLast(model);
  return forwardModuleOutputs(model, layoutFor(model, input));
}

c10::Device deviceOf(const torch::nn::Module& model) {
  auto params = model.parameters(true);
  return params.empty() ? c10::Device(c10::kCPU) : params[0].device();
}

}  // namespace fcn
