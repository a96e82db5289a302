// torchvision's segmentation models (torchvision.models.segmentation): FCN and DeepLabV3 on
// a dilated ResNet-50/101 or MobileNetV3-Large, and LR-ASPP on MobileNetV3-Large, with
// torchvision's module trees and state-dict names (backbone.*, classifier.*,
// aux_classifier.*). The backbone runs as torchvision's IntermediateLayerGetter: its
// children in order, keeping the outputs of the returned layers; the heads' logits are
// upsampled bilinearly to the input's size. The outputs are named as torchvision's dict:
// "out", and "aux" with an auxiliary classifier.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "models/registry.h"

namespace fcn {

/// Which model: torchvision's builder fcn_resnet50 is {"fcn", "resnet50", classes, aux}.
struct SegmentationSpec {
  std::string head;      // "fcn", "deeplabv3" or "lraspp"
  std::string backbone;  // "resnet50", "resnet101" or "mobilenet_v3_large"
  int64_t numClasses = 21;
  bool aux = false;
};

class SegmentationModel : public torch::nn::Module {
 public:
  /// {"out": logits [N, classes, H, W]} and, with an auxiliary classifier, {"aux": ...}.
  NamedOutputs forwardOutputs(const at::Tensor& input);
  /// The "out" logits alone.
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;
  const SegmentationSpec& spec() const { return spec_; }
  /// The backbone children whose outputs the heads read, and under which name ("out", "aux",
  /// "low", "high").
  const std::map<std::string, std::string>& returnLayers() const { return returnLayers_; }

 protected:
  explicit SegmentationModel(const SegmentationSpec& spec);

 private:
  SegmentationSpec spec_;
  std::shared_ptr<torch::nn::Module> backbone_, classifier_, auxClassifier_;
  /// The backbone's children whose outputs are kept, by name, and what they are called
  /// (torchvision's return_layers): out/aux, or low/high for LR-ASPP.
  std::map<std::string, std::string> returnLayers_;
};

/// torchvision's FCN (fcn_resnet50, fcn_resnet101).
class FCN : public SegmentationModel {
 public:
  explicit FCN(const SegmentationSpec& spec) : SegmentationModel(spec) {}
};

/// torchvision's DeepLabV3 (deeplabv3_resnet50, _resnet101, _mobilenet_v3_large).
class DeepLabV3 : public SegmentationModel {
 public:
  explicit DeepLabV3(const SegmentationSpec& spec) : SegmentationModel(spec) {}
};

/// torchvision's LRASPP (lraspp_mobilenet_v3_large).
class LRASPP : public SegmentationModel {
 public:
  explicit LRASPP(const SegmentationSpec& spec) : SegmentationModel(spec) {}
};

/// The model spec describes, freshly initialised as torchvision initialises it; invalid
/// combinations (an unknown head or backbone, LR-ASPP with aux, FCN on MobileNet) throw.
std::shared_ptr<SegmentationModel> makeSegmentationModel(const SegmentationSpec& spec);

}  // namespace fcn
