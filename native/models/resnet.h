// ResNet-18 with torchvision's module tree and state-dict names (conv1 bn1 relu maxpool
// layer1..4 avgpool fc; BasicBlocks with conv1 bn1 relu conv2 bn2 downsample), so that
// torchvision's published weights load by name.
#pragma once

#include <torch/torch.h>

#include "models/sequential.h"

namespace fcn {

class BasicBlock : public torch::nn::Module {
 public:
  BasicBlock(int64_t inPlanes, int64_t planes, int64_t stride);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inPlanes_, planes_, stride_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::ReLU relu_{nullptr};
  std::shared_ptr<Sequential> downsample_;
};

class ResNet : public torch::nn::Module {
 public:
  /// blocks: BasicBlocks per stage ({2, 2, 2, 2} is ResNet-18).
  ResNet(const std::array<int64_t, 4>& blocks, int64_t numClasses);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  std::array<int64_t, 4> blocks_;
  int64_t numClasses_;
  std::shared_ptr<Sequential> makeStage(int64_t& inPlanes, int64_t planes, int64_t blocks, int64_t stride);

  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::ReLU relu_{nullptr};
  torch::nn::MaxPool2d maxpool_{nullptr};
  std::shared_ptr<Sequential> layer1_, layer2_, layer3_, layer4_;
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

}  // namespace fcn
