// torchvision's segmentation heads (see segmentation_heads.h): construction in torchvision's
// order (state-dict keys and order as torchvision's) and the forwards of those that are not
// a plain Sequential.
#include "models/segmentation_heads.h"

#include "models/onnx_graph.h"
#include "models/registry.h"
#include "models/state_dict.h"

namespace fcn {

namespace {

at::Tensor runsInsideLraspp(torch::nn::Module&, const at::Tensor&) {
  throw std::invalid_argument("LRASPPHead reads the low- and high-level features: it runs as part of LRASPP");
}

at::Tensor notRunnable(torch::nn::Module&, const at::Tensor&) {
  throw std::invalid_argument("a ModuleList holds modules and has no forward of its own");
}

// ONNX: FCNHead and DeepLabHead are their children in order; ASPPPooling resizes its pooled
// features back to its input's size; ASPP concatenates its branches before the projection.
// LRASPPHead is written by LRASPP, which has the two inputs it reads.
std::string asppPoolingOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input,
                            const std::string& path) {
  return resizeBilinearOnnx(g, exportChildrenOnnx(m, g, input, path), input);
}

std::string asppOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  const auto& convs = **m.named_children().find("convs");
  std::vector<std::string> branches;
  for (const auto& branch : convs.named_children()) {
    branches.push_back(exportModuleOnnx(*branch.value(), g, input, path + "convs." + branch.key() + "."));
  }
  return exportChildOnnx(m, "project", g, g.add("Concat", branches, {{"axis", int64_t{1}}}), path);
}

[[maybe_unused]] const bool registered[] = {
    registerKind<FCNHead>(
        {.name = "FCNHead", .forward = &detail::plainForward<Sequential>, .onnx = exportChildrenOnnx}),
    registerKind<ASPPPooling>({.name = "ASPPPooling", .onnx = asppPoolingOnnx}),
    registerKind<ASPP>({.name = "ASPP", .onnx = asppOnnx}),
    registerKind<DeepLabHead>(
        {.name = "DeepLabHead", .forward = &detail::plainForward<Sequential>, .onnx = exportChildrenOnnx}),
    registerKind<LRASPPHead>({.name = "LRASPPHead", .forward = &runsInsideLraspp}),
    registerKind<torch::nn::ModuleListImpl>({.name = "ModuleList", .forward = &notRunnable}),
};

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, bool bias, int64_t dilation = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).padding(kernel == 1 ? 0 : dilation).dilation(dilation).bias(bias));
}

/// conv, BatchNorm, ReLU: torchvision's ASPP branches and LR-ASPP's cbr.
std::shared_ptr<Sequential> convBnRelu(int64_t in, int64_t out, int64_t kernel, int64_t dilation = 1) {
  auto s = std::make_shared<Sequential>();
  s->append("", conv(in, out, kernel, false, dilation).ptr());
  s->append("", torch::nn::BatchNorm2d(out).ptr());
  s->append("", torch::nn::ReLU().ptr());
  return s;
}

}  // namespace

at::Tensor resizeBilinear(const at::Tensor& x, at::IntArrayRef size) {
  return at::upsample_bilinear2d(x, {size[0], size[1]}, /*align_corners=*/false);
}

FCNHead::FCNHead(int64_t inChannels, int64_t channels)
    : Sequential("FCNHead"), inChannels_(inChannels), channels_(channels) {
  int64_t inter = inChannels / 4;
  append("", conv(inChannels, inter, 3, false).ptr());
  append("", torch::nn::BatchNorm2d(inter).ptr());
  append("", torch::nn::ReLU().ptr());
  append("", torch::nn::Dropout(torch::nn::DropoutOptions(0.1)).ptr());
  append("", conv(inter, channels, 1, true).ptr());
}

std::shared_ptr<torch::nn::Module> FCNHead::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<FCNHead>(inChannels_, channels_);
  copyState(*this, *copy, device);
  return copy;
}

ASPPPooling::ASPPPooling(int64_t inChannels, int64_t outChannels)
    : Sequential("ASPPPooling"), inChannels_(inChannels), outChannels_(outChannels) {
  append("", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})).ptr());
  append("", conv(inChannels, outChannels, 1, false).ptr());
  append("", torch::nn::BatchNorm2d(outChannels).ptr());
  append("", torch::nn::ReLU().ptr());
}

at::Tensor ASPPPooling::forward(const at::Tensor& input) {
  return resizeBilinear(Sequential::forward(input), input.sizes().slice(2));
}

std::shared_ptr<torch::nn::Module> ASPPPooling::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<ASPPPooling>(inChannels_, outChannels_);
  copyState(*this, *copy, device);
  return copy;
}

ASPP::ASPP(int64_t inChannels, std::vector<int64_t> atrousRates, int64_t outChannels)
    : torch::nn::Module("ASPP"), inChannels_(inChannels), outChannels_(outChannels), rates_(std::move(atrousRates)) {
  convs_ = torch::nn::ModuleList();
  convs_->push_back(convBnRelu(inChannels, outChannels, 1));
  for (int64_t rate : rates_) convs_->push_back(convBnRelu(inChannels, outChannels, 3, rate));
  convs_->push_back(std::make_shared<ASPPPooling>(inChannels, outChannels));
  register_module("convs", convs_);
  project_ = convBnRelu(static_cast<int64_t>(convs_->size()) * outChannels, outChannels, 1);
  project_->append("", torch::nn::Dropout(torch::nn::DropoutOptions(0.5)).ptr());
  register_module("project", project_);
}

at::Tensor ASPP::forward(const at::Tensor& input) {
  std::vector<at::Tensor> branches;
  for (const auto& branch : *convs_) branches.push_back(forwardModule(*branch, input));
  return project_->forward(at::cat(branches, 1));
}

std::shared_ptr<torch::nn::Module> ASPP::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<ASPP>(inChannels_, rates_, outChannels_);
  copyState(*this, *copy, device);
  return copy;
}

DeepLabHead::DeepLabHead(int64_t inChannels, int64_t numClasses)
    : Sequential("DeepLabHead"), inChannels_(inChannels), numClasses_(numClasses) {
  append("", std::make_shared<ASPP>(inChannels, std::vector<int64_t>{12, 24, 36}));
  append("", conv(256, 256, 3, false).ptr());
  append("", torch::nn::BatchNorm2d(256).ptr());
  append("", torch::nn::ReLU().ptr());
  append("", conv(256, numClasses, 1, true).ptr());
}

std::shared_ptr<torch::nn::Module> DeepLabHead::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<DeepLabHead>(inChannels_, numClasses_);
  copyState(*this, *copy, device);
  return copy;
}

LRASPPHead::LRASPPHead(int64_t lowChannels, int64_t highChannels, int64_t numClasses, int64_t interChannels)
    : torch::nn::Module("LRASPPHead"),
      lowChannels_(lowChannels),
      highChannels_(highChannels),
      numClasses_(numClasses),
      interChannels_(interChannels) {
  cbr_ = register_module("cbr", convBnRelu(highChannels, interChannels, 1));
  scale_ = std::make_shared<Sequential>();
  scale_->append("", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})).ptr());
  scale_->append("", conv(highChannels, interChannels, 1, false).ptr());
  scale_->append("", torch::nn::Sigmoid().ptr());
  register_module("scale", scale_);
  lowClassifier_ = register_module("low_classifier", conv(lowChannels, numClasses, 1, true));
  highClassifier_ = register_module("high_classifier", conv(interChannels, numClasses, 1, true));
}

at::Tensor LRASPPHead::forward(const at::Tensor& low, const at::Tensor& high) {
  at::Tensor x = cbr_->forward(high) * scale_->forward(high);
  x = resizeBilinear(x, low.sizes().slice(2));
  return lowClassifier_->forward(low) + highClassifier_->forward(x);
}

std::shared_ptr<torch::nn::Module> LRASPPHead::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<LRASPPHead>(lowChannels_, highChannels_, numClasses_, interChannels_);
  copyState(*this, *copy, device);
  return copy;
}

}  // namespace fcn
