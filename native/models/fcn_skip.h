// FCN-16s and FCN-8s (Long, Shelhamer & Darrell 2015, the chapter's exercise 4) on a
// ResNet-18 body: 1x1 score layers on layer3 (stride 16) and layer2 (stride 8) are added to
// the 2x-upsampled coarser scores before the final upsampling. FCN-32s is the chapter's own
// Sequential and needs no class of its own.
#pragma once

#include <torch/torch.h>

namespace fcn {

/// The two architectures share this class; FCN16s and FCN8s below are their kinds.
class FCNSkip : public torch::nn::Module {
 public:
  /// The fused scores upsampled by the final transposed convolution (the registry's: on the CPU
  /// the sub-pixel path).
  at::Tensor forward(const at::Tensor& input);
  /// The argmax over the classes of forward(input), from the final upsampling's labels.
  at::Tensor labels(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 protected:
  /// stem: conv1 .. layer1 of the ResNet (stride 4); layer2..4 its stages; stride 16 or 8.
  FCNSkip(std::shared_ptr<torch::nn::Module> stem, std::shared_ptr<torch::nn::Module> layer2,
          std::shared_ptr<torch::nn::Module> layer3, std::shared_ptr<torch::nn::Module> layer4, int64_t numClasses,
          int64_t outputStride);

 private:
  /// The class scores at the output stride: score_fr upsampled and summed with the skips'.
  at::Tensor fusedScores(const at::Tensor& input);
  const char* name() const { return outputStride_ == 16 ? "FCN16s" : "FCN8s"; }
  int64_t numClasses_, outputStride_;
  std::shared_ptr<torch::nn::Module> stem_, layer2_, layer3_, layer4_;
  torch::nn::Conv2d scoreFr_{nullptr}, scorePool4_{nullptr}, scorePool3_{nullptr};
  torch::nn::ConvTranspose2d upscore2_{nullptr}, upscorePool4_{nullptr}, upscoreFinal_{nullptr};
};

/// FCN-16s: scores of layer4 and layer3 (stride 16).
class FCN16s : public FCNSkip {
 public:
  FCN16s(std::shared_ptr<torch::nn::Module> stem, std::shared_ptr<torch::nn::Module> layer2,
         std::shared_ptr<torch::nn::Module> layer3, std::shared_ptr<torch::nn::Module> layer4, int64_t numClasses)
      : FCNSkip(std::move(stem), std::move(layer2), std::move(layer3), std::move(layer4), numClasses, 16) {}
};

/// FCN-8s: scores of layer4, layer3 and layer2 (stride 8).
class FCN8s : public FCNSkip {
 public:
  FCN8s(std::shared_ptr<torch::nn::Module> stem, std::shared_ptr<torch::nn::Module> layer2,
        std::shared_ptr<torch::nn::Module> layer3, std::shared_ptr<torch::nn::Module> layer4, int64_t numClasses)
      : FCNSkip(std::move(stem), std::move(layer2), std::move(layer3), std::move(layer4), numClasses, 8) {}
};

/// FCN16s (outputStride 16) or FCN8s (8) over the given body.
std::shared_ptr<FCNSkip> makeFcnSkip(int64_t outputStride, std::shared_ptr<torch::nn::Module> stem,
                                     std::shared_ptr<torch::nn::Module> layer2,
                                     std::shared_ptr<torch::nn::Module> layer3,
                                     std::shared_ptr<torch::nn::Module> layer4, int64_t numClasses);

}  // namespace fcn
