// torchvision's ResNet, BasicBlock and Bottleneck (see resnet.h): construction in
// torchvision's order (so state dicts list the same keys in the same order), its
// initialisation, and the forwards.
#include "models/resnet.h"

#include "models/onnx_graph.h"
#include "models/registry.h"
#include "models/state_dict.h"

namespace fcn {

namespace {
// ONNX: the unfused forwards (conv, BN, ReLU; the residual Add), children named as in torchvision.

/// The children names in order through g, from input.
std::string chain(const torch::nn::Module& m, std::initializer_list<const char*> names, OnnxGraph& g,
                  const std::string& input, const std::string& path) {
  std::string x = input;
  for (const char* name : names) x = exportChildOnnx(m, name, g, x, path);
  return x;
}

/// relu(out + identity), identity being the input or its downsample.
std::string residual(const torch::nn::Module& m, OnnxGraph& g, const std::string& out, const std::string& input,
                     const std::string& path) {
  bool downsamples = m.named_children().find("downsample") != nullptr;
  std::string identity = downsamples ? exportChildOnnx(m, "downsample", g, input, path) : input;
  return g.add("Relu", {g.add("Add", {out, identity})});
}

std::string basicBlockOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                           const std::string& path) {
  return residual(m, g, chain(m, {"conv1", "bn1", "relu", "conv2", "bn2"}, g, input, path), input, path);
}

std::string bottleneckOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                           const std::string& path) {
  std::string out = chain(m, {"conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"}, g, input, path);
  return residual(m, g, out, input, path);
}

/// The stem, the four stages, then (classifiers) global pooling, flatten and fc.
std::string resnetOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  std::string x = chain(m, {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"}, g, input, path);
  if (m.named_children().find("fc") == nullptr) return x;
  x = g.add("Flatten", {exportChildOnnx(m, "avgpool", g, x, path)}, {{"axis", int64_t{1}}});
  return exportChildOnnx(m, "fc", g, x, path);
}

[[maybe_unused]] const bool registered[] = {
    registerKind<ResNet>({.name = "ResNet", .onnx = resnetOnnx}),
    registerKind<BasicBlock>({.name = "BasicBlock", .onnx = basicBlockOnnx}),
    registerKind<Bottleneck>({.name = "Bottleneck", .onnx = bottleneckOnnx}),
};

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).dilation(dilation).bias(false));
}

/// torchvision's downsample: a 1x1 convolution with the block's stride, then BatchNorm.
std::shared_ptr<Sequential> downsample(int64_t in, int64_t out, int64_t stride) {
  auto d = std::make_shared<Sequential>();
  d->append("", conv(in, out, 1, stride, 0).ptr());
  d->append("", torch::nn::BatchNorm2d(out).ptr());
  return d;
}
/// ReLU in place, as torchvision's ResNets have it: it overwrites a BatchNorm output (or the
/// block's sum) that nothing else reads, and saves a tensor and a pass over memory per use.
torch::nn::ReLU inplaceRelu() { return torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)); }
}  // namespace

BasicBlock::BasicBlock(int64_t inPlanes, int64_t planes, int64_t stride)
    : torch::nn::Module("BasicBlock"), inPlanes_(inPlanes), planes_(planes), stride_(stride) {
  conv1_ = register_module("conv1", conv(inPlanes, planes, 3, stride, 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
  relu_ = register_module("relu", inplaceRelu());
  conv2_ = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  if (stride != 1 || inPlanes != planes)
    downsample_ = register_module("downsample", downsample(inPlanes, planes, stride));
}

at::Tensor BasicBlock::forward(const at::Tensor& input) {
  if (folded_.fuses(*this, input)) {
    at::Tensor out = folded_.run(*conv1_, *bn1_, input, true);
    at::Tensor identity = downsample_ ? downsample_->forward(input) : input;
    return folded_.run(*conv2_, *bn2_, out, true, identity);
  }
  at::Tensor out = relu_->forward(bn1_->forward(conv1_->forward(input)));
  out = bn2_->forward(conv2_->forward(out));
  at::Tensor identity = downsample_ ? downsample_->forward(input) : input;
  return relu_->forward(out.add_(identity));
}

std::shared_ptr<torch::nn::Module> BasicBlock::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<BasicBlock>(inPlanes_, planes_, stride_);
  copyState(*this, *copy, device);
  return copy;
}

Bottleneck::Bottleneck(int64_t inPlanes, int64_t planes, int64_t stride, int64_t dilation)
    : torch::nn::Module("Bottleneck"), inPlanes_(inPlanes), planes_(planes), stride_(stride), dilation_(dilation) {
  conv1_ = register_module("conv1", conv(inPlanes, planes, 1, 1, 0));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", conv(planes, planes, 3, stride, dilation, dilation));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3_ = register_module("conv3", conv(planes, planes * expansion, 1, 1, 0));
  bn3_ = register_module("bn3", torch::nn::BatchNorm2d(planes * expansion));
  relu_ = register_module("relu", inplaceRelu());
  if (stride != 1 || inPlanes != planes * expansion) {
    downsample_ = register_module("downsample", downsample(inPlanes, planes * expansion, stride));
  }
}

at::Tensor Bottleneck::forward(const at::Tensor& input) {
  if (folded_.fuses(*this, input)) {
    at::Tensor out = folded_.run(*conv1_, *bn1_, input, true);
    out = folded_.run(*conv2_, *bn2_, out, true);
    at::Tensor identity = downsample_ ? downsample_->forward(input) : input;
    return folded_.run(*conv3_, *bn3_, out, true, identity);
  }
  at::Tensor out = relu_->forward(bn1_->forward(conv1_->forward(input)));
  out = relu_->forward(bn2_->forward(conv2_->forward(out)));
  out = bn3_->forward(conv3_->forward(out));
  at::Tensor identity = downsample_ ? downsample_->forward(input) : input;
  return relu_->forward(out.add_(identity));
}

std::shared_ptr<torch::nn::Module> Bottleneck::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<Bottleneck>(inPlanes_, planes_, stride_, dilation_);
  copyState(*this, *copy, device);
  return copy;
}

ResNet::ResNet(const ResNetConfig& config) : torch::nn::Module("ResNet"), config_(config) {
  int64_t inPlanes = 64, dilation = 1;
  conv1_ = register_module("conv1", conv(3, 64, 7, 2, 3));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
  relu_ = register_module("relu", inplaceRelu());
  maxpool_ = register_module("maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
  const auto& dilate = config.replaceStrideWithDilation;
  layer1_ = register_module("layer1", makeStage(inPlanes, dilation, 64, config.layers[0], 1, false));
  layer2_ = register_module("layer2", makeStage(inPlanes, dilation, 128, config.layers[1], 2, dilate[0]));
  layer3_ = register_module("layer3", makeStage(inPlanes, dilation, 256, config.layers[2], 2, dilate[1]));
  layer4_ = register_module("layer4", makeStage(inPlanes, dilation, 512, config.layers[3], 2, dilate[2]));
  if (config.classifier) {
    avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
    fc_ = register_module("fc", torch::nn::Linear(inPlanes, config.numClasses));
  }

  // torchvision's initialisation: Kaiming-normal (fan_out, relu) convolutions, BatchNorm
  // weight 1 and bias 0; the Linear keeps PyTorch's default.
  at::NoGradGuard noGrad;
  for (auto& m : modules(false)) {
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) {
      torch::nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
    } else if (auto* b = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      torch::nn::init::ones_(b->weight);
      torch::nn::init::zeros_(b->bias);
    }
  }
}

/// torchvision's _make_layer: with dilate, the stage keeps its input's stride and dilates
/// by the stride instead; its first block uses the previous dilation.
std::shared_ptr<Sequential> ResNet::makeStage(int64_t& inPlanes, int64_t& dilation, int64_t planes, int64_t blocks,
                                              int64_t stride, bool dilate) {
  int64_t previousDilation = dilation;
  if (dilate) {
    dilation *= stride;
    stride = 1;
  }
  auto stage = std::make_shared<Sequential>();
  if (config_.block == ResNetConfig::Block::Basic) {
    if (dilation > 1) throw std::invalid_argument("ResNet: BasicBlock does not support dilation");
    stage->append("", std::make_shared<BasicBlock>(inPlanes, planes, stride));
    inPlanes = planes;
    for (int64_t i = 1; i < blocks; ++i) stage->append("", std::make_shared<BasicBlock>(inPlanes, planes, 1));
  } else {
    stage->append("", std::make_shared<Bottleneck>(inPlanes, planes, stride, previousDilation));
    inPlanes = planes * Bottleneck::expansion;
    for (int64_t i = 1; i < blocks; ++i) {
      stage->append("", std::make_shared<Bottleneck>(inPlanes, planes, 1, dilation));
    }
  }
  return stage;
}

at::Tensor ResNet::forward(const at::Tensor& input) {
  at::Tensor x = folded_.fuses(*this, input) ? folded_.run(*conv1_, *bn1_, input, true)
                                             : relu_->forward(bn1_->forward(conv1_->forward(input)));
  x = maxpool_->forward(x);
  x = layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(x))));
  if (!config_.classifier) return x;
  x = avgpool_->forward(x).flatten(1);
  return fc_->forward(x);
}

std::shared_ptr<torch::nn::Module> ResNet::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<ResNet>(config_);
  copyState(*this, *copy, device);
  return copy;
}

}  // namespace fcn
