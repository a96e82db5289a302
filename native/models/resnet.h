// torchvision's ResNets with their module tree and state-dict names (conv1 bn1 relu maxpool
// layer1..4 avgpool fc), so that torchvision's published weights load by name: BasicBlocks
// (ResNet-18: conv1 bn1 relu conv2 bn2 downsample) or v1.5 Bottlenecks (ResNet-50/101: conv1
// bn1 conv2 bn2 conv3 bn3 relu downsample, the stride on the 3x3 conv2), and torchvision's
// replace_stride_with_dilation for the segmentation backbones (output stride 8), which also
// drop avgpool and fc as torchvision's IntermediateLayerGetter does. In inference each
// conv + BN (+ residual) + ReLU runs as one folded convolution (fused_conv.h).
#pragma once

#include <torch/torch.h>

#include <array>

#include "models/fused_conv.h"
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
  FoldedConvs folded_;
};

/// torchvision's Bottleneck (ResNet v1.5): 1x1 to planes, 3x3 with the stride and dilation
/// (padding = dilation), 1x1 to 4 x planes; a 1x1 conv + BN downsample where the shape changes.
class Bottleneck : public torch::nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t inPlanes, int64_t planes, int64_t stride, int64_t dilation);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inPlanes_, planes_, stride_, dilation_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::ReLU relu_{nullptr};
  std::shared_ptr<Sequential> downsample_;
  FoldedConvs folded_;
};

/// What a ResNet is made of: torchvision's resnet18 is {Basic, {2, 2, 2, 2}}, resnet50
/// {Bottleneck, {3, 4, 6, 3}}, resnet101 {Bottleneck, {3, 4, 23, 3}}.
struct ResNetConfig {
  enum class Block { Basic, Bottleneck };
  Block block = Block::Basic;
  std::array<int64_t, 4> layers{2, 2, 2, 2};
  int64_t numClasses = 1000;
  /// torchvision's replace_stride_with_dilation for layer2..4 ({false, true, true} for the
  /// segmentation backbones: layer3 and layer4 keep stride 8 and dilate instead).
  std::array<bool, 3> replaceStrideWithDilation{false, false, false};
  /// avgpool and fc; false for a segmentation backbone, whose forward ends at layer4.
  bool classifier = true;
};

class ResNet : public torch::nn::Module {
 public:
  explicit ResNet(const ResNetConfig& config);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;
  const ResNetConfig& config() const { return config_; }

 private:
  ResNetConfig config_;
  std::shared_ptr<Sequential> makeStage(int64_t& inPlanes, int64_t& dilation, int64_t planes, int64_t blocks,
                                        int64_t stride, bool dilate);

  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::ReLU relu_{nullptr};
  torch::nn::MaxPool2d maxpool_{nullptr};
  std::shared_ptr<Sequential> layer1_, layer2_, layer3_, layer4_;
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  torch::nn::Linear fc_{nullptr};
  FoldedConvs folded_;
};

}  // namespace fcn
