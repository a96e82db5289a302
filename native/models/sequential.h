// Sequential: children run in order in one native call; names are "0", "1", ... unless
// given, as in torch.nn.Sequential. In inference (fused_conv.h) a Conv2d, BatchNorm2d(, ReLU)
// run of children (the chapter's FCN stem, ResNet downsamples) runs as one convolution.
#pragma once

#include <torch/torch.h>

#include "models/fused_conv.h"

namespace fcn {

class Sequential : public torch::nn::Module {
 public:
  Sequential() : torch::nn::Module("Sequential") {}
  /// A Sequential subclass with a name of its own (torchvision's FCNHead, DeepLabHead, ...).
  explicit Sequential(const std::string& name) : torch::nn::Module(name) {}
  /// Appends m under name (its index when name is empty); duplicate names and cycles are refused.
  void append(const std::string& name, std::shared_ptr<torch::nn::Module> m);
  at::Tensor forward(const at::Tensor& input);
  /// The argmax over the channels of forward(input): the last child's labels (forwardModuleLabels)
  /// of the others' output.
  at::Tensor labels(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;

 private:
  /// The first `end` children run in order on input.
  at::Tensor runChildren(const at::Tensor& input, size_t end);
  FoldedConvs folded_;
};

}  // namespace fcn
