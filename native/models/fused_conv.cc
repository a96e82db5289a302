// Folding BatchNorm into the preceding convolution, the cache of folded weights, and the
// fused convolution call (see fused_conv.h).
#include "models/fused_conv.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <optional>
#include <string_view>

#include "core/backends.h"
#include "core/registered_ops.h"

namespace fcn {

namespace {

using Scalars = c10::List<std::optional<at::Scalar>>;
/// mkldnn::_convolution_pointwise(X, W, B?, padding, stride, dilation, groups, attr, scalars, algorithm).
using UnaryFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, c10::IntArrayRef,
                           c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view, Scalars,
                           std::optional<std::string_view>);
/// mkldnn::_convolution_pointwise.binary(X, other, W, B?, padding, stride, dilation, groups,
/// binary_attr, alpha, unary_attr, unary_scalars, unary_algorithm): unary(conv(X) + other).
using BinaryFn = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view,
                            std::optional<at::Scalar>, std::optional<std::string_view>, Scalars,
                            std::optional<std::string_view>);

/// oneDNN's fused convolutions, where this libtorch registers them for the CPU (builds
/// without oneDNN do not: they take at::conv2d), and its weight packing
/// mkldnn::_reorder_convolution_weight(W, padding, stride, dilation, groups, input_size?),
/// called boxed: it runs once per fold.
struct PointwiseOps {
  std::optional<c10::TypedOperatorHandle<UnaryFn>> unary;
  std::optional<c10::TypedOperatorHandle<BinaryFn>> binary;
  std::optional<c10::OperatorHandle> reorder;
};

const PointwiseOps& pointwiseOps() {
  static const PointwiseOps ops{findCpuOp<UnaryFn>("mkldnn::_convolution_pointwise", ""),
                                findCpuOp<BinaryFn>("mkldnn::_convolution_pointwise", "binary"),
                                findCpuOp("mkldnn::_reorder_convolution_weight", "")};
  return ops;
}

/// weight in oneDNN's blocked layout for conv's parameters and inputs of the given sizes,
/// so that each call skips reordering it. The layout oneDNN picks depends on the input's
/// size: a weight packed for another size is reordered again on every call, so it is packed
/// anew when the size changes. An opaque (MKLDNN-layout) tensor only oneDNN's ops take.
at::Tensor packWeight(const c10::OperatorHandle& reorder, const at::Tensor& weight,
                      const torch::nn::detail::ConvNdOptions<2>& o, c10::IntArrayRef inputSizes) {
  c10::InferenceMode normalTensors(false);
  at::NoGradGuard noGrad;
  auto list = [](c10::IntArrayRef values) { return c10::IValue(values.vec()); };
  torch::jit::Stack stack{weight,
                          list(std::get<torch::ExpandingArray<2>>(o.padding())),
                          list(o.stride()),
                          list(o.dilation()),
                          c10::IValue(o.groups()),
                          list(inputSizes)};
  reorder.callBoxed(&stack);
  return stack.at(0).toTensor();
}

/// The tensors a folded convolution is computed from; undefined ones stand for absent ones.
std::array<at::Tensor, 7> sourcesOf(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn) {
  return {conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked};
}

std::vector<std::pair<const void*, int64_t>> stampsOf(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn) {
  std::vector<std::pair<const void*, int64_t>> stamps;
  for (const auto& t : sourcesOf(conv, bn)) {
    stamps.emplace_back(t.defined() ? t.const_data_ptr() : nullptr, t.defined() ? t._version() : 0);
  }
  return stamps;
}

/// conv's weight and bias with bn folded in: w * s and (b - mean) * s + beta, s = gamma /
/// sqrt(var + eps), computed in double; the weight keeps the conv weight's memory format.
/// Made as normal tensors even inside InferenceMode, so that they serve any later call.
std::pair<at::Tensor, at::Tensor> fold(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn) {
  c10::InferenceMode normalTensors(false);
  at::NoGradGuard noGrad;
  auto dtype = conv.weight.scalar_type();
  at::Tensor scale = (bn.running_var.to(at::kDouble) + bn.options.eps()).rsqrt();
  if (bn.weight.defined()) scale = scale * bn.weight.to(at::kDouble);
  at::Tensor weight = (conv.weight.to(at::kDouble) * scale.reshape({-1, 1, 1, 1})).to(dtype);
  weight = weight.contiguous(conv.weight.suggest_memory_format());
  at::Tensor bias = -bn.running_mean.to(at::kDouble);
  if (conv.bias.defined()) bias = bias + conv.bias.to(at::kDouble);
  bias = bias * scale;
  if (bn.bias.defined()) bias = bias + bn.bias.to(at::kDouble);
  return {weight, bias.to(dtype).contiguous()};
}

/// relu(bn(conv(x)) + residual) by the modules themselves: the reference the fused path equals.
at::Tensor unfused(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, bool relu,
                   const at::Tensor& residual) {
  at::Tensor y = bn.forward(conv.forward(x));
  if (residual.defined()) y = y + residual;
  return relu ? at::relu(y) : y;
}

}  // namespace

bool foldable(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn) {
  if (bn.is_training() || !bn.options.track_running_stats()) return false;
  if (!bn.running_mean.defined() || !bn.running_var.defined()) return false;
  if (!std::holds_alternative<torch::ExpandingArray<2>>(conv.options.padding())) return false;
  if (!std::holds_alternative<torch::enumtype::kZeros>(conv.options.padding_mode())) return false;
  if (conv.weight.dim() != 4 || !at::isFloatingType(conv.weight.scalar_type())) return false;
  for (const auto& t : sourcesOf(conv, bn)) {
    if (t.defined() && t.is_inference()) return false;
  }
  return true;
}

thread_local bool fusedOnThisThread = false;
std::atomic<uint64_t> fusedCalls{0};
std::atomic<uint64_t> foldedKept{0};

FusedInferenceScope::FusedInferenceScope(bool on) : previous_(fusedOnThisThread) {
  fusedOnThisThread = previous_ || on;
}
FusedInferenceScope::~FusedInferenceScope() { fusedOnThisThread = previous_; }

FoldedConvs::~FoldedConvs() { foldedKept.fetch_sub(folded_.size(), std::memory_order_relaxed); }

bool FoldedConvs::fuses(const torch::nn::Module& m, const at::Tensor& x) {
  // Under CPU autocast the layers run one by one, in the precision autocast gives them (the
  // fused ops are float32 and outside autocast's casts).
  bool fused = (fusedOnThisThread || backends::fusedInference.load()) && !m.is_training() &&
               !at::GradMode::is_enabled() && !at::autocast::is_autocast_enabled(at::kCPU) && x.defined() &&
               x.dim() == 4 && x.device().is_cpu() && x.layout() == at::kStrided;
  if (!fused && (m.is_training() || (x.defined() && !x.device().is_cpu()))) {
    std::lock_guard<std::mutex> lock(mutex_);
    foldedKept.fetch_sub(folded_.size(), std::memory_order_relaxed);
    folded_.clear();
  }
  return fused;
}

at::Tensor FoldedConvs::run(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, bool relu,
                            const at::Tensor& residual) {
  if (!foldable(conv, bn) || !conv.weight.device().is_cpu() || x.scalar_type() != conv.weight.scalar_type()) {
    return unfused(conv, bn, x, relu, residual);
  }
  const auto& o = conv.options;
  const PointwiseOps& ops = pointwiseOps();
  bool onednn =
      x.scalar_type() == at::kFloat && x.numel() > 0 && (!residual.defined() || residual.scalar_type() == at::kFloat);
  // A channels-last input takes oneDNN's fused convolution with the weight packed for its
  // size (its output is channels-last); a contiguous model keeps plain folded weights through
  // at::conv2d, so that its activations stay contiguous. Unpacked, or packed without the
  // input's size, the fused op gained nothing in whole models (oneDNN reordered the weight on
  // every call).
  bool packed =
      onednn && ops.unary && ops.binary && ops.reorder && x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
  at::Tensor weight, packedWeight, bias;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [entry, added] = folded_.try_emplace(&conv);
    if (added) foldedKept.fetch_add(1, std::memory_order_relaxed);
    Folded& f = entry->second;
    auto stamps = stampsOf(conv, bn);
    if (stamps != f.sources || !f.weight.defined()) {
      std::tie(f.weight, f.bias) = fold(conv, bn);
      f.packed = at::Tensor();
      f.sources = std::move(stamps);
    }
    if (packed && (!f.packed.defined() || f.packedFor != x.sizes())) {
      f.packed = packWeight(*ops.reorder, f.weight, o, x.sizes());
      f.packedFor = x.sizes().vec();
    }
    weight = f.weight;
    if (packed) packedWeight = f.packed;
    bias = f.bias;
  }
  c10::IntArrayRef padding = std::get<torch::ExpandingArray<2>>(o.padding());
  c10::IntArrayRef stride = o.stride(), dilation = o.dilation();
  if (packed) {
    try {
      at::Tensor y =
          residual.defined()
              ? ops.binary->call(x, residual, packedWeight, bias, padding, stride, dilation, o.groups(), "add",
                                 std::nullopt, relu ? std::optional<std::string_view>("relu") : std::nullopt, Scalars(),
                                 std::nullopt)
              : ops.unary->call(x, packedWeight, bias, padding, stride, dilation, o.groups(), relu ? "relu" : "none",
                                Scalars(), std::nullopt);
      fusedCalls.fetch_add(1, std::memory_order_relaxed);
      return y;
    } catch (const c10::Error&) {  // a case this oneDNN's fused op refuses: the plain folded path
    }
  }
  at::Tensor y = at::conv2d(x, weight, bias, stride, padding, dilation, o.groups());
  if (residual.defined()) y.add_(residual);
  return relu ? y.relu_() : y;
}

uint64_t fusedConvolutionCalls() { return fusedCalls.load(std::memory_order_relaxed); }

uint64_t fusedConvolutionsKept() { return foldedKept.load(std::memory_order_relaxed); }

}  // namespace fcn
