#include "models/run_model.h"

#include "core/autocast.h"
#include "core/backends.h"
#include "core/describe.h"
#include "models/cuda_graphs.h"
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

/// The model's first parameter, which stands for all of them (dtype, layout), or an undefined
/// tensor. It is the parameter itself: set_data on it shows here too.
at::Tensor firstParameter(const torch::nn::Module& model) {
  auto params = model.parameters(true);
  return params.empty() ? at::Tensor() : params[0];
}

/// x laid out as the convolutions of a model whose first parameter is `first` want it:
/// channels-last when the weights are, else x.
at::Tensor layoutFor(const at::Tensor& first, const at::Tensor& x) {
  if (x.dim() != 4) return x;
  bool channelsLast = first.defined() && first.dim() == 4 && !first.is_contiguous() &&
                      first.is_contiguous(at::MemoryFormat::ChannelsLast);
  return channelsLast ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

/// An input whose dtype the model's weights cannot take is named from the user's side.
void checkInputType(const at::Tensor& first, const at::Tensor& input) {
  if (!first.defined() || input.scalar_type() == first.scalar_type()) return;
  const char* weights = dtypeName(first.scalar_type());
  throw std::invalid_argument(std::string("input is ") + describeTensor(input) + ", but the model's weights are " +
                              weights + ": convert the input first (.to('" + weights + "'))");
}

/// input laid out for model, its weights made channels-last first where that is faster.
at::Tensor prepareLayout(torch::nn::Module& model, const at::Tensor& first, const at::Tensor& input,
                         const autocast::Scope& scope) {
  bool onGpu = !input.device().is_cpu();
  if (!backends::channelsLast || (onGpu && !scope.active())) return input;
  useChannelsLast(model, onGpu);
  return layoutFor(first, input);
}

/// An output of a forward under autocast back in the dtype of the model's weights, so that
/// losses, argmax and users see full-precision tensors (as after torch.autocast's .float()).
at::Tensor fullPrecision(const at::Tensor& first, at::Tensor out) {
  if (!first.defined() || !out.is_floating_point() || out.scalar_type() == first.scalar_type()) return out;
  return out.to(first.scalar_type());
}

/// forward(x laid out for model) under the autocast scope of x's device, its outputs in the
/// weights' dtype, after checking x's dtype: one forward of runModel or runModelOutputs.
template <typename Forward>
NamedOutputs runOnce(torch::nn::Module& model, const at::Tensor& x, const Forward& forward) {
  checkReady(model);
  at::Tensor first = firstParameter(model);
  checkInputType(first, x);
  autocast::Scope scope(x.device());
  NamedOutputs outputs = forward(prepareLayout(model, first, x, scope));
  if (scope.active())
    for (auto& [name, out] : outputs) out = fullPrecision(first, out);
  return outputs;
}

/// The one output of forward(model, x laid out), through runOnce and CUDA graphs (key: which forward).
at::Tensor runSingle(torch::nn::Module& model, const at::Tensor& input, int key, ForwardFn forward) {
  auto run = [&model, forward](const at::Tensor& x) {
    return runOnce(model, x, [&model, forward](const at::Tensor& laidOut) {
      return NamedOutputs{{"out", forward(model, laidOut)}};
    });
  };
  return cudaGraphs::forward(model, input, key, run).front().second;
}

}  // namespace

at::Tensor runModel(torch::nn::Module& model, const at::Tensor& input) {
  return runSingle(model, input, /*key=*/0, forwardModule);
}

at::Tensor runModelLabels(torch::nn::Module& model, const at::Tensor& input) {
  return runSingle(model, input, /*key=*/2, forwardModuleLabels);
}

NamedOutputs runModelOutputs(torch::nn::Module& model, const at::Tensor& input) {
  auto run = [&model](const at::Tensor& x) {
    return runOnce(model, x, [&model](const at::Tensor& laidOut) { return forwardModuleOutputs(model, laidOut); });
  };
  return cudaGraphs::forward(model, input, /*key=*/1, run);
}

c10::Device deviceOf(const torch::nn::Module& model) {
  at::Tensor first = firstParameter(model);
  return first.defined() ? first.device() : c10::Device(c10::kCPU);
}

}  // namespace fcn
