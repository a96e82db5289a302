// The libtorch layers the FCN and torchvision's segmentation models are made of, registered
// as kinds with how each is built from a TypeScript options object mirroring PyTorch's
// keyword arguments (TypeScript has validated and defaulted them). A ConvTranspose2d computed without gradient whose
// kernel is twice its stride runs as a sub-pixel convolution (the same numbers, faster on the CPU),
// and gives labels (forwardModuleLabels) from the sub-pixel scores.
#include "models/activations.h"
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
  if (!subpixelFits(up.options, x, up.weight, up.bias)) return general(up.forward(x));
  std::optional<at::Tensor> bias;
  if (up.bias.defined()) bias = up.bias;
  return subpixel(x, up.weight, bias, up.options.stride()->at(0),
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

[[maybe_unused]] const bool registered[] = {
    registerKind<torch::nn::Conv2dImpl>("Conv2d", conv2d),
    registerKind<torch::nn::ConvTranspose2dImpl>("ConvTranspose2d", convTranspose2d, convTranspose2dForward, nullptr,
                                                 nullptr, convTranspose2dLabels),
    registerKind<torch::nn::BatchNorm2dImpl>("BatchNorm2d", batchNorm2d),
    registerKind<torch::nn::ReLUImpl>("ReLU", relu),
    registerKind<torch::nn::SigmoidImpl>("Sigmoid", sigmoid),
    registerKind<HardswishImpl>("Hardswish", hardswish),
    registerKind<HardsigmoidImpl>("Hardsigmoid", hardsigmoid),
    registerKind<torch::nn::DropoutImpl>("Dropout", dropout),
    registerKind<torch::nn::MaxPool2dImpl>("MaxPool2d", maxPool2d),
    registerKind<torch::nn::AdaptiveAvgPool2dImpl>("AdaptiveAvgPool2d", adaptiveAvgPool2d),
    registerKind<torch::nn::FlattenImpl>("Flatten", flatten),
    registerKind<torch::nn::LinearImpl>("Linear", linear),
};

}  // namespace

}  // namespace fcn
