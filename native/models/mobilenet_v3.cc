// torchvision's MobileNetV3-Large (see mobilenet_v3.h): the paper's table as torchvision
// writes it, its blocks, and its initialisation.
#include "models/mobilenet_v3.h"

#include "models/activations.h"
#include "models/onnx_graph.h"
#include "models/registry.h"
#include "models/state_dict.h"

namespace fcn {

namespace {

// ONNX: the squeeze-excitation scale (pool, fc1, ReLU, fc2, hardsigmoid) times the input; the
// inverted residual's block plus its input where it has the residual; features, pooling, flatten,
// classifier.
std::string squeezeExcitationOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                                  const std::string& path) {
  std::string scale = exportChildOnnx(m, "fc1", g, exportChildOnnx(m, "avgpool", g, input, path), path);
  scale = exportChildOnnx(m, "fc2", g, g.add("Relu", {scale}), path);
  scale = g.add("HardSigmoid", {scale}, {{"alpha", 1.0F / 6.0F}, {"beta", 0.5F}});
  return g.add("Mul", {scale, input});
}

std::string invertedResidualOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                                 const std::string& path) {
  std::string out = exportChildOnnx(m, "block", g, input, path);
  return static_cast<const InvertedResidual&>(m).residual() ? g.add("Add", {out, input}) : out;
}

std::string mobileNetV3Onnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                            const std::string& path) {
  std::string x = exportChildOnnx(m, "avgpool", g, exportChildOnnx(m, "features", g, input, path), path);
  return exportChildOnnx(m, "classifier", g, g.add("Flatten", {x}, {{"axis", int64_t{1}}}), path);
}

[[maybe_unused]] const bool registered[] = {
    registerKind<SqueezeExcitation>({.name = "SqueezeExcitation", .onnx = squeezeExcitationOnnx}),
    registerKind<InvertedResidual>({.name = "InvertedResidual", .onnx = invertedResidualOnnx}),
    registerKind<MobileNetV3>({.name = "MobileNetV3", .onnx = mobileNetV3Onnx}),
};

/// torchvision's _make_divisible: v rounded to the nearest multiple of divisor (at least
/// divisor), never more than 10 % below v.
int64_t makeDivisible(double v, int64_t divisor) {
  int64_t rounded = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

enum class Activation { None, ReLU, Hardswish };

/// torchvision's Conv2dNormActivation: conv (no bias, padding (k - 1) / 2 * dilation),
/// BatchNorm (eps 0.001, momentum 0.01), then the activation.
std::shared_ptr<Sequential> convNormActivation(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                               int64_t dilation, Activation activation) {
  auto s = std::make_shared<Sequential>();
  s->append("", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                      .stride(stride)
                                      .padding((kernel - 1) / 2 * dilation)
                                      .dilation(dilation)
                                      .groups(groups)
                                      .bias(false))
                    .ptr());
  s->append("", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001).momentum(0.01)).ptr());
  if (activation == Activation::ReLU) s->append("", torch::nn::ReLU().ptr());
  if (activation == Activation::Hardswish) s->append("", Hardswish().ptr());
  return s;
}

/// mobilenet_v3_large's blocks (torchvision's _mobilenet_v3_conf): in, kernel, expanded,
/// out, SE, Hardswish, stride, dilation. `dilated` turns the last stage's stride into
/// dilation 2.
std::vector<InvertedResidualConfig> largeConfig(bool dilated) {
  int64_t d = dilated ? 2 : 1;
  return {
      {16, 3, 16, 16, false, false, 1, 1},  {16, 3, 64, 24, false, false, 2, 1},  {24, 3, 72, 24, false, false, 1, 1},
      {24, 5, 72, 40, true, false, 2, 1},   {40, 5, 120, 40, true, false, 1, 1},  {40, 5, 120, 40, true, false, 1, 1},
      {40, 3, 240, 80, false, true, 2, 1},  {80, 3, 200, 80, false, true, 1, 1},  {80, 3, 184, 80, false, true, 1, 1},
      {80, 3, 184, 80, false, true, 1, 1},  {80, 3, 480, 112, true, true, 1, 1},  {112, 3, 672, 112, true, true, 1, 1},
      {112, 5, 672, 160, true, true, 2, d}, {160, 5, 960, 160, true, true, 1, d}, {160, 5, 960, 160, true, true, 1, d},
  };
}

}  // namespace

SqueezeExcitation::SqueezeExcitation(int64_t inputChannels, int64_t squeezeChannels)
    : torch::nn::Module("SqueezeExcitation"), inputChannels_(inputChannels), squeezeChannels_(squeezeChannels) {
  avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
  fc1_ = register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(inputChannels, squeezeChannels, 1)));
  fc2_ = register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeezeChannels, inputChannels, 1)));
}

at::Tensor SqueezeExcitation::forward(const at::Tensor& input) {
  at::Tensor scale = fc2_->forward(at::relu(fc1_->forward(avgpool_->forward(input))));
  return at::hardsigmoid(scale) * input;
}

std::shared_ptr<torch::nn::Module> SqueezeExcitation::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<SqueezeExcitation>(inputChannels_, squeezeChannels_);
  copyState(*this, *copy, device);
  return copy;
}

InvertedResidual::InvertedResidual(const InvertedResidualConfig& c)
    : torch::nn::Module("InvertedResidual"), config_(c), residual_(c.stride == 1 && c.inputChannels == c.outChannels) {
  Activation activation = c.hardswish ? Activation::Hardswish : Activation::ReLU;
  block_ = std::make_shared<Sequential>();
  if (c.expandedChannels != c.inputChannels) {
    block_->append("", convNormActivation(c.inputChannels, c.expandedChannels, 1, 1, 1, 1, activation));
  }
  int64_t stride = c.dilation > 1 ? 1 : c.stride;
  block_->append("", convNormActivation(c.expandedChannels, c.expandedChannels, c.kernel, stride, c.expandedChannels,
                                        c.dilation, activation));
  if (c.squeezeExcitation) {
    block_->append("",
                   std::make_shared<SqueezeExcitation>(c.expandedChannels, makeDivisible(c.expandedChannels / 4, 8)));
  }
  block_->append("", convNormActivation(c.expandedChannels, c.outChannels, 1, 1, 1, 1, Activation::None));
  register_module("block", block_);
}

at::Tensor InvertedResidual::forward(const at::Tensor& input) {
  at::Tensor result = block_->forward(input);
  return residual_ ? result + input : result;
}

std::shared_ptr<torch::nn::Module> InvertedResidual::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<InvertedResidual>(config_);
  copyState(*this, *copy, device);
  return copy;
}

std::shared_ptr<Sequential> mobileNetV3LargeFeatures(bool dilated) {
  auto features = std::make_shared<Sequential>();
  auto config = largeConfig(dilated);
  features->append("", convNormActivation(3, config.front().inputChannels, 3, 2, 1, 1, Activation::Hardswish));
  for (const auto& c : config) features->append("", std::make_shared<InvertedResidual>(c));
  int64_t last = config.back().outChannels;
  features->append("", convNormActivation(last, 6 * last, 1, 1, 1, 1, Activation::Hardswish));
  initMobileNet(*features);
  return features;
}

MobileNetV3::MobileNetV3(int64_t numClasses) : torch::nn::Module("MobileNetV3"), numClasses_(numClasses) {
  features_ = register_module("features", mobileNetV3LargeFeatures(false));
  avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
  classifier_ = std::make_shared<Sequential>();
  classifier_->append("", torch::nn::Linear(960, 1280).ptr());
  classifier_->append("", Hardswish().ptr());
  classifier_->append("", torch::nn::Dropout(torch::nn::DropoutOptions(0.2)).ptr());
  classifier_->append("", torch::nn::Linear(1280, numClasses).ptr());
  register_module("classifier", classifier_);
  initMobileNet(*classifier_);
}

at::Tensor MobileNetV3::forward(const at::Tensor& input) {
  return classifier_->forward(avgpool_->forward(features_->forward(input)).flatten(1));
}

std::shared_ptr<torch::nn::Module> MobileNetV3::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<MobileNetV3>(numClasses_);
  copyState(*this, *copy, device);
  return copy;
}

void initMobileNet(torch::nn::Module& m) {
  at::NoGradGuard noGrad;
  for (auto& child : m.modules(true)) {
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(child.get())) {
      torch::nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut);
      if (c->bias.defined()) torch::nn::init::zeros_(c->bias);
    } else if (auto* b = dynamic_cast<torch::nn::BatchNorm2dImpl*>(child.get())) {
      torch::nn::init::ones_(b->weight);
      torch::nn::init::zeros_(b->bias);
    } else if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(child.get())) {
      torch::nn::init::normal_(l->weight, 0, 0.01);
      torch::nn::init::zeros_(l->bias);
    }
  }
}

}  // namespace fcn
