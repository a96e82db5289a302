// The activations MobileNetV3 needs that libtorch's C++ API has no module for: Hardswish
// (x * relu6(x + 3) / 6) and Hardsigmoid (relu6(x + 3) / 6), as PyTorch's nn.Hardswish and
// nn.Hardsigmoid. Registered as kinds in layers.cc.
#pragma once

#include <torch/torch.h>

namespace fcn {

class HardswishImpl : public torch::nn::Cloneable<HardswishImpl> {
 public:
  HardswishImpl() : torch::nn::Cloneable<HardswishImpl>("Hardswish") {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return at::hardswish(x); }
};
TORCH_MODULE(Hardswish);

class HardsigmoidImpl : public torch::nn::Cloneable<HardsigmoidImpl> {
 public:
  HardsigmoidImpl() : torch::nn::Cloneable<HardsigmoidImpl>("Hardsigmoid") {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return at::hardsigmoid(x); }
};
TORCH_MODULE(Hardsigmoid);

}  // namespace fcn
