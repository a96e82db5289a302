#include "models/resnet.h"

#include "models/registry.h"
#include "models/state_dict.h"

namespace fcn {

namespace {
[[maybe_unused]] const bool registered[] = {registerKind<ResNet>("ResNet"), registerKind<BasicBlock>("BasicBlock")};

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}
}  // namespace

BasicBlock::BasicBlock(int64_t inPlanes, int64_t planes, int64_t stride)
    : torch::nn::Module("BasicBlock"), inPlanes_(inPlanes), planes_(planes), stride_(stride) {
  conv1_ = register_module("conv1", conv(inPlanes, planes, 3, stride, 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
  relu_ = register_module("relu", torch::nn::ReLU());
  conv2_ = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  if (stride != 1 || inPlanes != planes) {
    downsample_ = std::make_shared<Sequential>();
    downsample_->append("", conv(inPlanes, planes, 1, stride, 0).ptr());
    downsample_->append("", torch::nn::BatchNorm2d(planes).ptr());
    register_module("downsample", downsample_);
  }
}

at::Tensor BasicBlock::forward(const at::Tensor& input) {
  at::Tensor out = relu_->forward(bn1_->forward(conv1_->forward(input)));
  out = bn2_->forward(conv2_->forward(out));
  at::Tensor identity = downsample_ ? downsample_->forward(input) : input;
  return relu_->forward(out + identity);
}

std::shared_ptr<torch::nn::Module> BasicBlock::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<BasicBlock>(inPlanes_, planes_, stride_);
  copyState(*this, *copy, device);
  return copy;
}

ResNet::ResNet(const std::array<int64_t, 4>& blocks, int64_t numClasses)
    : torch::nn::Module("ResNet"), blocks_(blocks), numClasses_(numClasses) {
  int64_t inPlanes = 64;
  conv1_ = register_module("conv1", conv(3, 64, 7, 2, 3));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
  relu_ = register_module("relu", torch::nn::ReLU());
  maxpool_ = register_module("maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
  layer1_ = register_module("layer1", makeStage(inPlanes, 64, blocks[0], 1));
  layer2_ = register_module("layer2", makeStage(inPlanes, 128, blocks[1], 2));
  layer3_ = register_module("layer3", makeStage(inPlanes, 256, blocks[2], 2));
  layer4_ = register_module("layer4", makeStage(inPlanes, 512, blocks[3], 2));
  avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
  fc_ = register_module("fc", torch::nn::Linear(512, numClasses));

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

std::shared_ptr<Sequential> ResNet::makeStage(int64_t& inPlanes, int64_t planes, int64_t blocks, int64_t stride) {
  auto stage = std::make_shared<Sequential>();
  stage->append("", std::make_shared<BasicBlock>(inPlanes, planes, stride));
  inPlanes = planes;
  for (int64_t i = 1; i < blocks; ++i) stage->append("", std::make_shared<BasicBlock>(inPlanes, planes, 1));
  return stage;
}

at::Tensor ResNet::forward(const at::Tensor& input) {
  at::Tensor x = maxpool_->forward(relu_->forward(bn1_->forward(conv1_->forward(input))));
  x = layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(x))));
  x = avgpool_->forward(x).flatten(1);
  return fc_->forward(x);
}

std::shared_ptr<torch::nn::Module> ResNet::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<ResNet>(blocks_, numClasses_);
  copyState(*this, *copy, device);
  return copy;
}

}  // namespace fcn
