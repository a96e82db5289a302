// The libtorch layers the FCN and torchvision's segmentation models are made of, registered
// as kinds with how each is built from a TypeScript options object mirroring PyTorch's
// keyword arguments (TypeScript has validated and defaulted them). A ConvTranspose2d computed without gradient whose
// kernel is twice its stride runs as a sub-pixel convolution (the same numbers, faster on the CPU),
// and gives labels (forwardModuleLabels) from the sub-pixel scores.
#include <ATen/autocast_mode.h>

#include <array>

#include "models/activations.h"
#include "models/onnx_graph.h"
#include "models/registry.h"
#include "models/subpixel.h"

namespace fcn {

namespace {

torch::ExpandingArray<2> pair(const LayerOptions& o, const char* key) {
  auto [h, w] = o.pair(key);
  return torch::ExpandingArray<2>({h, w});
}

torch::nn::detail::conv_padding_mode_t paddingMode(const std::string& mode) {
  if (mode == "zeros") return torch::kZeros;
  if (mode == "reflect") return torch::kReflect;
  if (mode == "replicate") return torch::kReplicate;
  if (mode == "circular") return torch::kCircular;
  throw std::invalid_argument("paddingMode must be zeros, reflect, replicate or circular, got '" + mode + "'");
}

std::shared_ptr<torch::nn::Module> conv2d(const LayerOptions& o) {
  torch::nn::Conv2dOptions options(o.integer("inChannels"), o.integer("outChannels"), pair(o, "kernelSize"));
  options.stride(pair(o, "stride")).dilation(pair(o, "dilation")).groups(o.integer("groups")).bias(o.flag("bias"));
  options.padding_mode(paddingMode(o.text("paddingMode")));
  if (o.has("paddingString")) {
    std::string p = o.text("paddingString");
    if (p == "same") {
      options.padding(torch::kSame);
    } else if (p == "valid") {
      options.padding(torch::kValid);
    } else {
      throw std::invalid_argument("padding must be a number, [h, w], 'same' or 'valid', got '" + p + "'");
    }
  } else {
    options.padding(pair(o, "padding"));
  }
  return torch::nn::Conv2d(options).ptr();
}

/// padding='same' as PyTorch computes it: for height and width, the padding before and after
/// (an odd total's extra pixel after).
std::array<std::array<int64_t, 2>, 2> samePadding(const torch::nn::detail::ConvNdOptions<2>& o) {
  std::array<std::array<int64_t, 2>, 2> pads{};
  for (size_t i = 0; i < 2; i++) {
    int64_t total = o.dilation()->at(i) * (o.kernel_size()->at(i) - 1);
    pads[i] = {total / 2, total - total / 2};
  }
  return pads;
}

/// Conv2d's forward as PyTorch's. libtorch 2.x computes padding='same' with a padding mode other
/// than zeros in dimension order where F.pad wants the last dimension first, so a kernel that is not
/// square (or dilated unequally) padded height by width's amounts: [3, 4] turned 20x24 into 21x23.
at::Tensor conv2dForward(torch::nn::Module& m, const at::Tensor& x) {
  auto& conv = static_cast<torch::nn::Conv2dImpl&>(m);
  const auto& o = conv.options;
  if (!std::holds_alternative<torch::enumtype::kSame>(o.padding()) ||
      std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode())) {
    return conv.forward(x);
  }
  auto [height, width] = samePadding(o);
  std::vector<int64_t> pads{width[0], width[1], height[0], height[1]};  // F.pad's order: last dimension first
  const char* mode = std::holds_alternative<torch::enumtype::kReflect>(o.padding_mode())     ? "reflect"
                     : std::holds_alternative<torch::enumtype::kReplicate>(o.padding_mode()) ? "replicate"
                                                                                             : "circular";
  return at::conv2d(at::pad(x, pads, mode), conv.weight, conv.bias, *o.stride(), c10::IntArrayRef({0, 0}),
                    *o.dilation(), o.groups());
}

std::shared_ptr<torch::nn::Module> convTranspose2d(const LayerOptions& o) {
  torch::nn::ConvTranspose2dOptions options(o.integer("inChannels"), o.integer("outChannels"), pair(o, "kernelSize"));
  options.stride(pair(o, "stride")).padding(pair(o, "padding")).output_padding(pair(o, "outputPadding"));
  options.dilation(pair(o, "dilation")).groups(o.integer("groups")).bias(o.flag("bias"));
  if (o.text("paddingMode") != "zeros") {
    throw std::invalid_argument("ConvTranspose2d only supports paddingMode 'zeros', as in PyTorch");
  }
  return torch::nn::ConvTranspose2d(options).ptr();
}

/// subpixel(x, weight, bias, stride, padding) for m, a ConvTranspose2d, where the sub-pixel
/// path fits x; else general(the general kernel's output).
template <typename Subpixel, typename General>
at::Tensor onSubpixelPath(torch::nn::Module& m, const at::Tensor& x, Subpixel&& subpixel, General&& general) {
  auto& up = static_cast<torch::nn::ConvTranspose2dImpl&>(m);
  // Under CPU autocast the upsampling stays float32 on the sub-pixel path: in bfloat16 oneDNN
  // runs it as a general transposed convolution, slower than float32 even with AMX.
  bool autocast = at::autocast::is_autocast_enabled(at::kCPU);
  at::Tensor input = autocast && x.is_cpu() && x.scalar_type() == at::kBFloat16 ? x.to(at::kFloat) : x;
  if (!subpixelFits(up.options, input, up.weight, up.bias)) return general(up.forward(x));
  std::optional<c10::impl::ExcludeDispatchKeyGuard> float32;
  if (autocast) float32.emplace(c10::DispatchKey::AutocastCPU);
  std::optional<at::Tensor> bias;
  if (up.bias.defined()) bias = up.bias;
  return subpixel(input, up.weight, bias, up.options.stride()->at(0),
                  std::get<torch::ExpandingArray<2>>(up.options.padding())->at(0));
}

at::Tensor convTranspose2dForward(torch::nn::Module& m, const at::Tensor& x) {
  return onSubpixelPath(m, x, subpixelTransposedConv, [](at::Tensor out) { return out; });
}

/// Its labels straight from the sub-pixel scores where that path fits.
at::Tensor convTranspose2dLabels(torch::nn::Module& m, const at::Tensor& x) {
  return onSubpixelPath(m, x, subpixelLabels, [&m](const at::Tensor& out) { return labelsOf(m, out); });
}

std::shared_ptr<torch::nn::Module> batchNorm2d(const LayerOptions& o) {
  torch::nn::BatchNorm2dOptions options(o.integer("numFeatures"));
  options.eps(o.number("eps")).momentum(o.number("momentum")).affine(o.flag("affine"));
  options.track_running_stats(o.flag("trackRunningStats"));
  return torch::nn::BatchNorm2d(options).ptr();
}

std::shared_ptr<torch::nn::Module> relu(const LayerOptions&) { return torch::nn::ReLU().ptr(); }

std::shared_ptr<torch::nn::Module> sigmoid(const LayerOptions&) { return torch::nn::Sigmoid().ptr(); }
std::shared_ptr<torch::nn::Module> hardswish(const LayerOptions&) { return Hardswish().ptr(); }
std::shared_ptr<torch::nn::Module> hardsigmoid(const LayerOptions&) { return Hardsigmoid().ptr(); }

std::shared_ptr<torch::nn::Module> dropout(const LayerOptions& o) {
  return torch::nn::Dropout(torch::nn::DropoutOptions(o.number("p"))).ptr();
}

std::shared_ptr<torch::nn::Module> maxPool2d(const LayerOptions& o) {
  torch::nn::MaxPool2dOptions options(pair(o, "kernelSize"));
  options.stride(pair(o, "stride")).padding(pair(o, "padding")).dilation(pair(o, "dilation"));
  options.ceil_mode(o.flag("ceilMode"));
  return torch::nn::MaxPool2d(options).ptr();
}

std::shared_ptr<torch::nn::Module> adaptiveAvgPool2d(const LayerOptions& o) {
  auto [h, w] = o.pair("outputSize");
  return torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({h, w})).ptr();
}

std::shared_ptr<torch::nn::Module> flatten(const LayerOptions& o) {
  return torch::nn::Flatten(torch::nn::FlattenOptions().start_dim(o.integer("startDim")).end_dim(o.integer("endDim")))
      .ptr();
}

std::shared_ptr<torch::nn::Module> linear(const LayerOptions& o) {
  return torch::nn::Linear(
             torch::nn::LinearOptions(o.integer("inFeatures"), o.integer("outFeatures")).bias(o.flag("bias")))
      .ptr();
}

// Their ONNX nodes (in inference: BatchNorm2d with its running statistics, Dropout as nothing).

std::vector<int64_t> hw(const torch::ExpandingArray<2>& a) { return {a->at(0), a->at(1)}; }

/// ONNX's pads of a convolution: explicit, 'valid' or 'same'.
std::vector<int64_t> convPads(const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto& padding = o.padding();
  if (std::holds_alternative<torch::enumtype::kValid>(padding)) return {0, 0, 0, 0};
  if (std::holds_alternative<torch::enumtype::kSame>(padding)) {
    auto [height, width] = samePadding(o);
    return {height[0], width[0], height[1], width[1]};
  }
  return symmetricPads(std::get<torch::ExpandingArray<2>>(padding));
}

std::string conv2dOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  const auto& conv = static_cast<const torch::nn::Conv2dImpl&>(m);
  const auto& o = conv.options;
  std::vector<int64_t> pads = convPads(o);
  std::string x = input;
  if (!std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode())) {
    // PyTorch pads the input first with the mode, then convolves without padding.
    std::string mode = std::holds_alternative<torch::enumtype::kReflect>(o.padding_mode())     ? "reflect"
                       : std::holds_alternative<torch::enumtype::kReplicate>(o.padding_mode()) ? "edge"
                                                                                               : "wrap";
    if (mode == "wrap" && g.opset() < 19) {
      throw std::invalid_argument("Conv2d with paddingMode 'circular' needs ONNX opset 19 or later (Pad's 'wrap')");
    }
    x = g.add("Pad", {x, g.ints({0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]})}, {{"mode", mode}});
    pads = {0, 0, 0, 0};
  }
  std::vector<std::string> inputs{x, g.weight(path + "weight", conv.weight)};
  if (conv.bias.defined()) inputs.push_back(g.weight(path + "bias", conv.bias));
  return g.add("Conv", inputs, convAttributes(o, pads));
}

std::string convTranspose2dOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                                const std::string& path) {
  const auto& up = static_cast<const torch::nn::ConvTranspose2dImpl&>(m);
  const auto& o = up.options;
  std::vector<std::string> inputs{input, g.weight(path + "weight", up.weight)};
  if (up.bias.defined()) inputs.push_back(g.weight(path + "bias", up.bias));
  return g.add("ConvTranspose", inputs,
               {{"kernel_shape", hw(o.kernel_size())},
                {"strides", hw(o.stride())},
                {"pads", symmetricPads(std::get<torch::ExpandingArray<2>>(o.padding()))},
                {"output_padding", hw(o.output_padding())},
                {"dilations", hw(o.dilation())},
                {"group", o.groups()}});
}

std::string batchNorm2dOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                            const std::string& path) {
  const auto& bn = static_cast<const torch::nn::BatchNorm2dImpl&>(m);
  const auto& o = bn.options;
  if (!o.track_running_stats()) {
    throw std::invalid_argument(
        "BatchNorm2d without running statistics (trackRunningStats: false) normalises each batch by its own; "
        "ONNX's BatchNormalization needs running statistics");
  }
  int64_t n = o.num_features();
  std::string scale = o.affine() ? g.weight(path + "weight", bn.weight) : g.filled(n, 1.0F);
  std::string shift = o.affine() ? g.weight(path + "bias", bn.bias) : g.filled(n, 0.0F);
  return g.add("BatchNormalization",
               {input, scale, shift, g.weight(path + "running_mean", bn.running_mean),
                g.weight(path + "running_var", bn.running_var)},
               {{"epsilon", static_cast<float>(o.eps())}});
}

std::string reluOnnx(const torch::nn::Module&, OnnxGraph& g, const std::string& input, const std::string&) {
  return g.add("Relu", {input});
}

std::string sigmoidOnnx(const torch::nn::Module&, OnnxGraph& g, const std::string& input, const std::string&) {
  return g.add("Sigmoid", {input});
}

/// relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1).
std::string hardsigmoidOnnx(const torch::nn::Module&, OnnxGraph& g, const std::string& input, const std::string&) {
  return g.add("HardSigmoid", {input}, {{"alpha", 1.0F / 6.0F}, {"beta", 0.5F}});
}

std::string hardswishOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  if (g.opset() >= 14) return g.add("HardSwish", {input});
  return g.add("Mul", {input, hardsigmoidOnnx(m, g, input, path)});
}

std::string dropoutOnnx(const torch::nn::Module&, OnnxGraph&, const std::string& input, const std::string&) {
  return input;
}

std::string maxPool2dOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string&) {
  const auto& o = static_cast<const torch::nn::MaxPool2dImpl&>(m).options;
  return g.add("MaxPool", {input},
               {{"kernel_shape", hw(o.kernel_size())},
                {"strides", hw(o.stride())},
                {"pads", symmetricPads(o.padding())},
                {"dilations", hw(o.dilation())},
                {"ceil_mode", int64_t{o.ceil_mode() ? 1 : 0}}});
}

std::string adaptiveAvgPool2dOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                                  const std::string&) {
  const auto& size = static_cast<const torch::nn::AdaptiveAvgPool2dImpl&>(m).options.output_size();
  if (size->at(0) != 1 || size->at(1) != 1) {
    throw std::invalid_argument(
        "AdaptiveAvgPool2d exports to ONNX with output size 1 (GlobalAveragePool) only: other sizes depend on "
        "the input's");
  }
  return g.add("GlobalAveragePool", {input});
}

std::string flattenOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string&) {
  const auto& o = static_cast<const torch::nn::FlattenImpl&>(m).options;
  if (o.start_dim() != 1 || o.end_dim() != -1) {
    throw std::invalid_argument("Flatten exports to ONNX with startDim 1 and endDim -1 only");
  }
  return g.add("Flatten", {input}, {{"axis", int64_t{1}}});
}

/// x W^T + b on the last dimension, for inputs of any rank.
std::string linearOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  const auto& linear = static_cast<const torch::nn::LinearImpl&>(m);
  std::string wt =
      g.add("Transpose", {g.weight(path + "weight", linear.weight)}, {{"perm", std::vector<int64_t>{1, 0}}});
  std::string y = g.add("MatMul", {input, wt});
  return linear.bias.defined() ? g.add("Add", {y, g.weight(path + "bias", linear.bias)}) : y;
}

// The rows: how each layer is made from its TypeScript options, runs and exports.
[[maybe_unused]] const bool registered[] = {
    registerKind<torch::nn::Conv2dImpl>(
        {.name = "Conv2d", .create = conv2d, .forward = conv2dForward, .onnx = conv2dOnnx}),
    registerKind<torch::nn::ConvTranspose2dImpl>({.name = "ConvTranspose2d",
                                                  .create = convTranspose2d,
                                                  .forward = convTranspose2dForward,
                                                  .labels = convTranspose2dLabels,
                                                  .onnx = convTranspose2dOnnx}),
    registerKind<torch::nn::BatchNorm2dImpl>({.name = "BatchNorm2d", .create = batchNorm2d, .onnx = batchNorm2dOnnx}),
    registerKind<torch::nn::ReLUImpl>({.name = "ReLU", .create = relu, .onnx = reluOnnx}),
    registerKind<torch::nn::SigmoidImpl>({.name = "Sigmoid", .create = sigmoid, .onnx = sigmoidOnnx}),
    registerKind<HardswishImpl>({.name = "Hardswish", .create = hardswish, .onnx = hardswishOnnx}),
    registerKind<HardsigmoidImpl>({.name = "Hardsigmoid", .create = hardsigmoid, .onnx = hardsigmoidOnnx}),
    registerKind<torch::nn::DropoutImpl>({.name = "Dropout", .create = dropout, .onnx = dropoutOnnx}),
    registerKind<torch::nn::MaxPool2dImpl>({.name = "MaxPool2d", .create = maxPool2d, .onnx = maxPool2dOnnx}),
    registerKind<torch::nn::AdaptiveAvgPool2dImpl>(
        {.name = "AdaptiveAvgPool2d", .create = adaptiveAvgPool2d, .onnx = adaptiveAvgPool2dOnnx}),
    registerKind<torch::nn::FlattenImpl>({.name = "Flatten", .create = flatten, .onnx = flattenOnnx}),
    registerKind<torch::nn::LinearImpl>({.name = "Linear", .create = linear, .onnx = linearOnnx}),
};

}  // namespace

}  // namespace fcn
