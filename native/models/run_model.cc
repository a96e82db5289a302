#include "models/run_model.h"

#include "core/autocast.h"
#include "core/backends.h"
#include "core/describe.h"
#include "models/registry.h"

namespace fcn {

namespace {

/// Stores m's 4-d parameters channels-last (NHWC), once: on the CPU, and on a GPU under
/// autocast (cuDNN's reduced-precision convolutions run fastest in NHWC); set_data keeps each
/// parameter's identity, so optimizers holding them are unaffected. The copies are made
/// outside inference mode even when a prediction runs in it: inference tensors as a
/// parameter's data would refuse the backward of every later training step.
void useChannelsLast(torch::nn::Module& m, bool onGpu) {
  c10::InferenceMode normalTensors(false);
  at::NoGradGuard noGrad;
  for (auto& p : m.parameters(true)) {
    if (p.dim() == 4 && (p.device().is_cpu() || onGpu) && !p.is_contiguous(at::MemoryFormat::ChannelsLast)) {
      p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
}

/// x laid out as m's convolutions want it: channels-last when m's weights are, else x.
at::Tensor layoutFor(torch::nn::Module& m, const at::Tensor& x) {
  if (x.dim() != 4) return x;
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

/// input laid out for model, its weights made channels-last first where that is faster.
at::Tensor prepareLayout(torch::nn::Module& model, const at::Tensor& input, const autocast::Scope& scope) {
  bool onGpu = !input.device().is_cpu();
  if (!backends::channelsLast || (onGpu && !scope.active())) return input;
  useChannelsLast(model, onGpu);
  return layoutFor(model, input);
}

/// An output of a forward under autocast back in the dtype of the model's weights, so that
/// losses, argmax and users see full-precision tensors (as after torch.autocast's .float()).
at::Tensor fullPrecision(torch::nn::Module& model, at::Tensor out) {
  auto params = model.parameters(true);
  if (params.empty() || !out.is_floating_point() || out.scalar_type() == params[0].scalar_type()) return out;
  return out.to(params[0].scalar_type());
}

}  // namespace

at::Tensor runModel(torch::nn::Module& model, const at::Tensor& input) {
  checkInputType(model, input);
  autocast::Scope scope(input.device());
  at::Tensor out = forwardModule(model, prepareLayout(model, input, scope));
  return scope.active() ? fullPrecision(model, out) : out;
}

NamedOutputs runModelOutputs(torch::nn::Module& model, const at::Tensor& input) {
  checkInputType(model, input);
  autocast::Scope scope(input.device());
  NamedOutputs outputs = forwardModuleOutputs(model, prepareLayout(model, input, scope));
  if (scope.active())
    for (auto& [name, out] : outputs) out = fullPrecision(model, out);
  return outputs;
}

c10::Device deviceOf(const torch::nn::Module& model) {
  auto params = model.parameters(true);
  return params.empty() ? c10::Device(c10::kCPU) : params[0].device();
}

}  // namespace fcn
