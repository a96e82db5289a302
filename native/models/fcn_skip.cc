#include "models/fcn_skip.h"

#include "core/describe.h"
#include "models/onnx_graph.h"
#include "models/registry.h"
#include "models/state_dict.h"

namespace fcn {

namespace {

at::Tensor labels(torch::nn::Module& m, const at::Tensor& x) { return static_cast<FCNSkip&>(m).labels(x); }

/// fusedScores and forward as ONNX nodes (the final upsampling as a plain ConvTranspose).
std::string onnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  auto child = [&](const char* name, const std::string& x) { return exportChildOnnx(m, name, g, x, path); };
  bool eight = m.named_children().find("score_pool3") != nullptr;
  std::string pool3 = child("layer2", child("stem", input));
  std::string pool4 = child("layer3", pool3);
  std::string scores = child("score_fr", child("layer4", pool4));
  scores = g.add("Add", {child("upscore2", scores), child("score_pool4", pool4)});
  if (eight) scores = g.add("Add", {child("upscore_pool4", scores), child("score_pool3", pool3)});
  return child(eight ? "upscore8" : "upscore16", scores);
}
[[maybe_unused]] const bool registered[] = {
    registerKind<FCN16s>({.name = "FCN16s", .labels = labels, .onnx = onnx}),
    registerKind<FCN8s>({.name = "FCN8s", .labels = labels, .onnx = onnx}),
};

torch::nn::Conv2d score(int64_t in, int64_t numClasses) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, numClasses, 1));
}

/// A transposed convolution that upsamples exactly by `factor` (kernel 2f, padding f/2).
torch::nn::ConvTranspose2d upsample(int64_t numClasses, int64_t factor) {
  return torch::nn::ConvTranspose2d(
      torch::nn::ConvTranspose2dOptions(numClasses, numClasses, 2 * factor).stride(factor).padding(factor / 2));
}

}  // namespace

FCNSkip::FCNSkip(std::shared_ptr<torch::nn::Module> stem, std::shared_ptr<torch::nn::Module> layer2,
                 std::shared_ptr<torch::nn::Module> layer3, std::shared_ptr<torch::nn::Module> layer4,
                 int64_t numClasses, int64_t outputStride)
    : torch::nn::Module("FCNSkip"), numClasses_(numClasses), outputStride_(outputStride) {
  stem_ = register_module("stem", std::move(stem));
  layer2_ = register_module("layer2", std::move(layer2));
  layer3_ = register_module("layer3", std::move(layer3));
  layer4_ = register_module("layer4", std::move(layer4));
  // Long et al.'s layer names: score_fr on the coarsest features, score_pool4/3 on the finer.
  scoreFr_ = register_module("score_fr", score(512, numClasses));
  scorePool4_ = register_module("score_pool4", score(256, numClasses));
  if (outputStride == 8) scorePool3_ = register_module("score_pool3", score(128, numClasses));
  upscore2_ = register_module("upscore2", upsample(numClasses, 2));
  if (outputStride == 8) upscorePool4_ = register_module("upscore_pool4", upsample(numClasses, 2));
  upscoreFinal_ = register_module(outputStride == 16 ? "upscore16" : "upscore8", upsample(numClasses, outputStride));
}

at::Tensor FCNSkip::forward(const at::Tensor& input) { return forwardModule(*upscoreFinal_, fusedScores(input)); }

at::Tensor FCNSkip::labels(const at::Tensor& input) { return forwardModuleLabels(*upscoreFinal_, fusedScores(input)); }

at::Tensor FCNSkip::fusedScores(const at::Tensor& input) {
  if (input.dim() != 4 || input.size(2) % 32 != 0 || input.size(3) % 32 != 0) {
    throw std::invalid_argument(std::string(name()) + " needs [N, 3, H, W] input with H and W multiples of 32, got " +
                                shapeString(input));
  }
  at::Tensor pool3 = forwardModule(*layer2_, forwardModule(*stem_, input));
  at::Tensor pool4 = forwardModule(*layer3_, pool3);
  at::Tensor scores = scoreFr_->forward(forwardModule(*layer4_, pool4));
  scores = upscore2_->forward(scores) + scorePool4_->forward(pool4);
  if (outputStride_ == 8) scores = upscorePool4_->forward(scores) + scorePool3_->forward(pool3);
  return scores;
}

std::shared_ptr<torch::nn::Module> FCNSkip::clone(const std::optional<torch::Device>& device) const {
  auto copy = makeFcnSkip(outputStride_, stem_->clone(device), layer2_->clone(device), layer3_->clone(device),
                          layer4_->clone(device), numClasses_);
  copyState(*this, *copy, device);
  return copy;
}

std::shared_ptr<FCNSkip> makeFcnSkip(int64_t outputStride, std::shared_ptr<torch::nn::Module> stem,
                                     std::shared_ptr<torch::nn::Module> layer2,
                                     std::shared_ptr<torch::nn::Module> layer3,
                                     std::shared_ptr<torch::nn::Module> layer4, int64_t numClasses) {
  if (outputStride == 16) return std::make_shared<FCN16s>(stem, layer2, layer3, layer4, numClasses);
  if (outputStride == 8) return std::make_shared<FCN8s>(stem, layer2, layer3, layer4, numClasses);
  throw std::invalid_argument("FCNSkip: output stride must be 16 or 8, got " + std::to_string(outputStride));
}

}  // namespace fcn
