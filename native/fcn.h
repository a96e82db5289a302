// FCN-16s and FCN-8s (Long, Shelhamer & Darrell 2015, the chapter's exercise 4) on a
// ResNet-18 body: 1x1 score layers on layer3 (stride 16) and layer2 (stride 8) are added to
// the 2x-upsampled coarser scores before the final upsampling. FCN-32s is the chapter's own
// Sequential and needs no class of its own.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include "module.h"

namespace fcn {

class FCNSkip : public torch::nn::Module, public Layer {
 public:
  /// stem: conv1 .. layer1 of the ResNet (stride 4); layer2..4 its stages; stride 16 or 8.
  FCNSkip(std::shared_ptr<torch::nn::Module> stem, std::shared_ptr<torch::nn::Module> layer2,
          std::shared_ptr<torch::nn::Module> layer3, std::shared_ptr<torch::nn::Module> layer4, int64_t numClasses,
          int64_t outputStride);
  at::Tensor forward(const at::Tensor& input) override;
  const char* kind() const override { return outputStride_ == 16 ? "FCN16s" : "FCN8s"; }
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  int64_t numClasses_, outputStride_;
  std::shared_ptr<torch::nn::Module> stem_, layer2_, layer3_, layer4_;
  torch::nn::Conv2d scoreFr_{nullptr}, scorePool4_{nullptr}, scorePool3_{nullptr};
  torch::nn::ConvTranspose2d upscore2_{nullptr}, upscorePool4_{nullptr}, upscoreFinal_{nullptr};
};

void initFcn(Napi::Env env, Napi::Object exports);

}  // namespace fcn
