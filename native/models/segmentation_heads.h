// The heads of torchvision's segmentation models, with torchvision's module trees and
// state-dict names: FCNHead (3x3 conv to in/4, BN, ReLU, Dropout 0.1, 1x1 conv), DeepLabHead
// (ASPP with rates 12, 24, 36 and image pooling, 3x3 conv, BN, ReLU, 1x1 conv) and LR-ASPP's
// head (a 1x1 conv-BN-ReLU on the high-level features gated by a pooled sigmoid, upsampled to
// the low-level map and classified there together with it).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "models/sequential.h"

namespace fcn {

/// torchvision's FCNHead(inChannels, channels): children 0..4.
class FCNHead : public Sequential {
 public:
  FCNHead(int64_t inChannels, int64_t channels);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inChannels_, channels_;
};

/// torchvision's ASPPPooling: AdaptiveAvgPool2d(1), 1x1 conv, BN, ReLU, then a bilinear
/// upsampling back to the input's height and width.
class ASPPPooling : public Sequential {
 public:
  ASPPPooling(int64_t inChannels, int64_t outChannels);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inChannels_, outChannels_;
};

/// torchvision's ASPP: `convs` (1x1; one 3x3 per atrous rate; pooling) concatenated, then
/// `project` (1x1 conv to 256, BN, ReLU, Dropout 0.5).
class ASPP : public torch::nn::Module {
 public:
  ASPP(int64_t inChannels, std::vector<int64_t> atrousRates, int64_t outChannels = 256);
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inChannels_, outChannels_;
  std::vector<int64_t> rates_;
  torch::nn::ModuleList convs_{nullptr};
  std::shared_ptr<Sequential> project_;
};

/// torchvision's DeepLabHead(inChannels, numClasses): ASPP, 3x3 conv, BN, ReLU, 1x1 conv.
class DeepLabHead : public Sequential {
 public:
  DeepLabHead(int64_t inChannels, int64_t numClasses);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t inChannels_, numClasses_;
};

/// torchvision's LRASPPHead: cbr, scale, low_classifier, high_classifier. It reads two
/// feature maps, so it runs through LRASPP (forward with one input is an error).
class LRASPPHead : public torch::nn::Module {
 public:
  LRASPPHead(int64_t lowChannels, int64_t highChannels, int64_t numClasses, int64_t interChannels);
  at::Tensor forward(const at::Tensor& low, const at::Tensor& high);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t lowChannels_, highChannels_, numClasses_, interChannels_;
  std::shared_ptr<Sequential> cbr_, scale_;
  torch::nn::Conv2d lowClassifier_{nullptr}, highClassifier_{nullptr};
};

/// F.interpolate(x, size of like, mode='bilinear', align_corners=False).
at::Tensor resizeBilinear(const at::Tensor& x, at::IntArrayRef size);

}  // namespace fcn
