// Inference fusion for the CPU, when asked for (predict does; torch.backends.fusedInference
// for every forward): in eval mode with no gradient wanted, a Conv2d followed by an eval-mode
// BatchNorm2d runs as one convolution with the BatchNorm folded into its weight and bias
// (kept per conv, folded again whenever a source tensor changes), with the ReLU, and in
// ResNet blocks the residual add, fused into it through oneDNN's pointwise convolution with
// the weight packed for the input's size. The ResNet blocks and stem and Sequential's Conv2d,
// BatchNorm2d(, ReLU) runs use it; training, autograd and CPU autocast never do.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace fcn {

/// Asks for fused inference on this thread while it lives (predict does, so that its
/// default is the fast path while a plain forward stays PyTorch-exact), whatever
/// backends.fusedInference says; on = false leaves things as they are.
class FusedInferenceScope {
 public:
  explicit FusedInferenceScope(bool on);
  ~FusedInferenceScope();
  FusedInferenceScope(const FusedInferenceScope&) = delete;
  FusedInferenceScope& operator=(const FusedInferenceScope&) = delete;

 private:
  bool previous_;
};

/// How many convolutions have run as oneDNN fused convolutions with packed weights in this
/// process (a diagnostic: the tests check that the fast path is the one taken).
uint64_t fusedConvolutionCalls();

/// How many convolutions have their folded weights kept now, in all modules of this process
/// (a diagnostic: each holds a folded copy of its conv's weight, and for channels-last inputs
/// a packed one too; a conv folded by two modules that share it counts twice).
uint64_t fusedConvolutionsKept();

/// Whether bn(conv(x)) can run as one convolution: BN in eval mode with running stats, conv
/// with explicit zero padding, float weights, and no inference tensors among the sources
/// (they keep no version counter to tell a change by).
bool foldable(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn);

/// The folded convolutions of one module's conv + BN pairs, keyed by the Conv2d. A pair is
/// folded again when any of its source tensors (the conv's weight and bias, the BN's weight,
/// bias, running stats and batch count) has a new data pointer or version (training steps,
/// loadStateDict, copy_, to(device), the channels-last relayout), so it is never stale.
class FoldedConvs {
 public:
  FoldedConvs() = default;
  FoldedConvs(const FoldedConvs&) = delete;
  FoldedConvs& operator=(const FoldedConvs&) = delete;
  ~FoldedConvs();

  /// Whether m (the module owning these pairs) takes the fused path for x: fused inference
  /// is asked for (backends.fusedInference, or a FusedInferenceScope on this thread), m is in
  /// eval mode, no gradient is wanted (NoGrad or InferenceMode), CPU autocast is off and x is
  /// a 4-d dense CPU tensor. A forward in train mode or off the CPU drops the folded weights:
  /// training makes them stale, and they would hold more copies of the weights meanwhile.
  bool fuses(const torch::nn::Module& m, const at::Tensor& x);

  /// relu(bn(conv(x)) + residual), without the add when residual is undefined and without
  /// the relu when relu is false; the unfused modules run instead when the pair cannot be
  /// folded (BN in train mode or without running stats, non-zero padding modes, inference
  /// tensors as parameters).
  at::Tensor run(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, bool relu,
                 const at::Tensor& residual = {});

 private:
  struct Folded {
    std::vector<std::pair<const void*, int64_t>> sources;  // data pointer and version of each
    at::Tensor weight, bias;
    at::Tensor packed;  // weight in oneDNN's blocked layout for inputs of packedFor's sizes
    std::vector<int64_t> packedFor;
  };
  std::mutex mutex_;
  std::unordered_map<const torch::nn::Module*, Folded> folded_;
};

}  // namespace fcn
