// torchvision's segmentation models (see segmentation_model.h): the backbones and heads each
// builder puts together, and the forward of torchvision's _SimpleSegmentationModel and LRASPP.
#include "models/segmentation_model.h"

#include "core/describe.h"
#include "models/mobilenet_v3.h"
#include "models/onnx_graph.h"
#include "models/resnet.h"
#include "models/segmentation_heads.h"
#include "models/state_dict.h"

namespace fcn {

namespace {

at::Tensor outOnly(torch::nn::Module& m, const at::Tensor& x) { return static_cast<SegmentationModel&>(m).forward(x); }
NamedOutputs allOutputs(torch::nn::Module& m, const at::Tensor& x) {
  return static_cast<SegmentationModel&>(m).forwardOutputs(x);
}

/// forward ("out", and "aux" when the graph wants it) as ONNX nodes: the backbone's children up
/// to the last returned layer, the head (LR-ASPP's written here: it reads two features), the
/// logits resized to the input's size.
std::string onnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  const auto& model = static_cast<const SegmentationModel&>(m);
  const auto& returned = model.returnLayers();
  const auto& backbone = **m.named_children().find("backbone");
  std::map<std::string, std::string> features;
  std::string x = input;
  for (const auto& child : backbone.named_children()) {
    if (features.size() == returned.size()) break;
    x = exportModuleOnnx(*child.value(), g, x, path + "backbone." + child.key() + ".");
    auto it = returned.find(child.key());
    if (it != returned.end()) features[it->second] = x;
  }
  if (model.spec().head != "lraspp") {
    if (g.wantsAux() && features.count("aux") != 0) {
      g.setAux(resizeBilinearOnnx(g, exportChildOnnx(m, "aux_classifier", g, features.at("aux"), path), input));
    }
    return resizeBilinearOnnx(g, exportChildOnnx(m, "classifier", g, features.at("out"), path), input);
  }
  const auto& head = **m.named_children().find("classifier");
  std::string at = path + "classifier.";
  std::string high = features.at("high"), low = features.at("low");
  std::string scaled =
      g.add("Mul", {exportChildOnnx(head, "cbr", g, high, at), exportChildOnnx(head, "scale", g, high, at)});
  scaled = resizeBilinearOnnx(g, scaled, low);
  std::string logits = g.add("Add", {exportChildOnnx(head, "low_classifier", g, low, at),
                                     exportChildOnnx(head, "high_classifier", g, scaled, at)});
  return resizeBilinearOnnx(g, logits, input);
}

[[maybe_unused]] const bool registered[] = {
    registerKind<FCN>({.name = "FCN", .forward = &outOnly, .outputs = &allOutputs, .onnx = onnx}),
    registerKind<DeepLabV3>({.name = "DeepLabV3", .forward = &outOnly, .outputs = &allOutputs, .onnx = onnx}),
    registerKind<LRASPP>({.name = "LRASPP", .forward = &outOnly, .outputs = &allOutputs, .onnx = onnx}),
};

// MobileNetV3-Large's feature indices: 4 ends output stride 8 (40 channels), 16 is the last
// (960 channels, output stride 16 when dilated); torchvision's stage_indices[-4] and [-1].
constexpr int64_t kMobileNetLow = 4, kMobileNetHigh = 16;
constexpr int64_t kMobileNetLowChannels = 40, kMobileNetHighChannels = 960;

std::shared_ptr<torch::nn::Module> resnetBackbone(const std::string& name) {
  ResNetConfig config;
  config.block = ResNetConfig::Block::Bottleneck;
  config.layers = name == "resnet50" ? std::array<int64_t, 4>{3, 4, 6, 3} : std::array<int64_t, 4>{3, 4, 23, 3};
  config.replaceStrideWithDilation = {false, true, true};
  config.classifier = false;
  return std::make_shared<ResNet>(config);
}

}  // namespace

SegmentationModel::SegmentationModel(const SegmentationSpec& spec)
    : torch::nn::Module(spec.head == "fcn"         ? "FCN"
                        : spec.head == "deeplabv3" ? "DeepLabV3"
                                                   : "LRASPP"),
      spec_(spec) {
  const bool resnet = spec.backbone == "resnet50" || spec.backbone == "resnet101";
  if (!resnet && spec.backbone != "mobilenet_v3_large") {
    throw std::invalid_argument("segmentation backbone must be resnet50, resnet101 or mobilenet_v3_large, got '" +
                                spec.backbone + "'");
  }
  if (spec.head != "fcn" && spec.head != "deeplabv3" && spec.head != "lraspp") {
    throw std::invalid_argument("segmentation head must be fcn, deeplabv3 or lraspp, got '" + spec.head + "'");
  }
  if (spec.head == "fcn" && !resnet) throw std::invalid_argument("torchvision's FCN has ResNet backbones only");
  if (spec.head == "lraspp" && resnet) throw std::invalid_argument("torchvision's LR-ASPP has a MobileNetV3 backbone");
  if (spec.head == "lraspp" && spec.aux) throw std::invalid_argument("LR-ASPP does not use an auxiliary loss");
  if (spec.numClasses < 1) throw std::invalid_argument("numClasses must be >= 1");

  int64_t outChannels = 2048, auxChannels = 1024;
  if (resnet) {
    backbone_ = register_module("backbone", resnetBackbone(spec.backbone));
    returnLayers_ = {{"layer4", "out"}};
    if (spec.aux) returnLayers_["layer3"] = "aux";
  } else {
    backbone_ = register_module("backbone", mobileNetV3LargeFeatures(/*dilated=*/true));
    outChannels = kMobileNetHighChannels;
    auxChannels = kMobileNetLowChannels;
    if (spec.head == "lraspp") {
      returnLayers_ = {{std::to_string(kMobileNetLow), "low"}, {std::to_string(kMobileNetHigh), "high"}};
    } else {
      returnLayers_ = {{std::to_string(kMobileNetHigh), "out"}};
      if (spec.aux) returnLayers_[std::to_string(kMobileNetLow)] = "aux";
    }
  }
  if (spec.head == "fcn") {
    classifier_ = register_module("classifier", std::make_shared<FCNHead>(outChannels, spec.numClasses));
  } else if (spec.head == "deeplabv3") {
    classifier_ = register_module("classifier", std::make_shared<DeepLabHead>(outChannels, spec.numClasses));
  } else {
    classifier_ =
        register_module("classifier", std::make_shared<LRASPPHead>(kMobileNetLowChannels, kMobileNetHighChannels,
                                                                   spec.numClasses, /*interChannels=*/128));
  }
  if (spec.aux) {
    auxClassifier_ = register_module("aux_classifier", std::make_shared<FCNHead>(auxChannels, spec.numClasses));
  }
}

NamedOutputs SegmentationModel::forwardOutputs(const at::Tensor& input) {
  if (input.dim() != 4) {
    throw std::invalid_argument(std::string(name()) + " needs images [N, C, H, W], got " + shapeString(input));
  }
  // torchvision's IntermediateLayerGetter: the children in order up to the last returned one.
  std::map<std::string, at::Tensor> features;
  at::Tensor x = input;
  for (const auto& child : backbone_->named_children()) {
    x = forwardModule(*child.value(), x);
    auto it = returnLayers_.find(child.key());
    if (it != returnLayers_.end()) features[it->second] = x;
    if (features.size() == returnLayers_.size()) break;
  }
  auto size = input.sizes().slice(2);
  NamedOutputs outputs;
  if (spec_.head == "lraspp") {
    auto& head = static_cast<LRASPPHead&>(*classifier_);
    outputs.emplace_back("out", resizeBilinear(head.forward(features.at("low"), features.at("high")), size));
    return outputs;
  }
  outputs.emplace_back("out", resizeBilinear(forwardModule(*classifier_, features.at("out")), size));
  if (auxClassifier_) {
    outputs.emplace_back("aux", resizeBilinear(forwardModule(*auxClassifier_, features.at("aux")), size));
  }
  return outputs;
}

at::Tensor SegmentationModel::forward(const at::Tensor& input) { return forwardOutputs(input).front().second; }

std::shared_ptr<torch::nn::Module> SegmentationModel::clone(const std::optional<torch::Device>& device) const {
  auto copy = makeSegmentationModel(spec_);
  copyState(*this, *copy, device);
  return copy;
}

std::shared_ptr<SegmentationModel> makeSegmentationModel(const SegmentationSpec& spec) {
  if (spec.head == "fcn") return std::make_shared<FCN>(spec);
  if (spec.head == "deeplabv3") return std::make_shared<DeepLabV3>(spec);
  return std::make_shared<LRASPP>(spec);
}

}  // namespace fcn
