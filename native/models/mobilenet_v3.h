// torchvision's MobileNetV3-Large with its module tree and state-dict names (features.0 ..
// features.16, avgpool, classifier.0/3), so that torchvision's published weights load by name:
// inverted residual blocks (expand 1x1, depthwise kxk, squeeze-excitation, project 1x1) with
// ReLU or Hardswish, BatchNorm eps 0.001 momentum 0.01, and the dilated variant (blocks 13-15
// at stride 1, dilation 2) that the segmentation models use as their backbone.
#pragma once

#include <torch/torch.h>

#include "models/sequential.h"

namespace fcn {

/// torchvision's SqueezeExcitation: avgpool, fc1 (1x1 conv), ReLU, fc2, Hardsigmoid, times x.
class SqueezeExcitation : public torch::nn::Module {
 public:
  SqueezeExcitation(int64_t inputChannels, int64_t squeezeChannels);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inputChannels_, squeezeChannels_;
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  torch::nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
};

/// One row of the MobileNetV3 paper's table (torchvision's InvertedResidualConfig).
struct InvertedResidualConfig {
  int64_t inputChannels, kernel, expandedChannels, outChannels;
  bool squeezeExcitation, hardswish;
  int64_t stride, dilation;
};

/// torchvision's InvertedResidual: `block` (a Sequential) plus the input when the shape is kept.
class InvertedResidual : public torch::nn::Module {
 public:
  explicit InvertedResidual(const InvertedResidualConfig& config);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;
  /// Whether the input is added to the block's output (stride 1, as many channels out as in).
  bool residual() const { return residual_; }

 private:
  InvertedResidualConfig config_;
  bool residual_;
  std::shared_ptr<Sequential> block_;
};

/// features.0 .. features.16 of MobileNetV3-Large (torchvision's `mobilenet_v3_large().features`,
/// dilated as with `dilated=True` when asked), initialised as torchvision does.
std::shared_ptr<Sequential> mobileNetV3LargeFeatures(bool dilated);

/// torchvision's mobilenet_v3_large: features, avgpool, classifier (Linear 960 -> 1280,
/// Hardswish, Dropout 0.2, Linear 1280 -> numClasses).
class MobileNetV3 : public torch::nn::Module {
 public:
  explicit MobileNetV3(int64_t numClasses);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t numClasses_;
  std::shared_ptr<Sequential> features_, classifier_;
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
};

/// torchvision's initialisation of MobileNetV3: Kaiming-normal (fan_out) convolutions with
/// zero bias, BatchNorm weight 1 and bias 0, Linear weights N(0, 0.01) with zero bias.
void initMobileNet(torch::nn::Module& m);

}  // namespace fcn
