// An ONNX graph as the module kinds write it: nodes (an op, its inputs and outputs by name, its
// attributes) and the weights they read, in the order they run. Each registered kind that can be
// exported gives its nodes in its registry row (`.onnx`, next to its forward), so a new kind brings its
// export with it; exportModuleOnnx dispatches on the kind. No protobuf here: the addon hands the
// graph to TypeScript, which writes the file (src/onnx/).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace fcn {

struct OnnxAttribute {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>> value;
};

struct OnnxNode {
  std::string op;
  std::vector<std::string> inputs;
  std::string output;
  std::vector<OnnxAttribute> attributes;
};

class OnnxGraph {
 public:
  /// aux: the graph also outputs the auxiliary classifier's logits (torchvision's "aux").
  explicit OnnxGraph(int64_t opset, bool aux = false) : opset_(opset), aux_(aux) {}
  /// The opset the nodes must belong to (13 and up).
  int64_t opset() const { return opset_; }
  /// Whether the model's auxiliary output is wanted; a model that has one gives it to setAux.
  bool wantsAux() const { return aux_; }
  void setAux(const std::string& output) { auxOutput_ = output; }
  /// The auxiliary output's name, "" when none was given.
  const std::string& auxOutput() const { return auxOutput_; }
  /// Appends a node of op on inputs ("" for an omitted optional input); returns its output's name.
  std::string add(const std::string& op, std::vector<std::string> inputs, std::vector<OnnxAttribute> attributes = {});
  /// A copy of w (a parameter or buffer) as the initializer named name, its state-dict key;
  /// floating point weights are stored as float32, integer ones (int8 weights, int32 biases)
  /// as they are. Returns name.
  std::string weight(const std::string& name, const at::Tensor& w);
  /// A copy of t as a constant initializer; returns its name.
  std::string constant(const at::Tensor& t);
  /// A constant int64 vector (shapes, pads, axes); returns its name.
  std::string ints(const std::vector<int64_t>& values);
  /// A constant float32 tensor of shape [n] filled with value; returns its name.
  std::string filled(int64_t n, float value);
  const std::vector<OnnxNode>& nodes() const { return nodes_; }
  const std::vector<std::pair<std::string, at::Tensor>>& initializers() const { return initializers_; }

 private:
  int64_t opset_;
  bool aux_;
  std::string auxOutput_;
  int64_t names_ = 0;
  std::vector<OnnxNode> nodes_;
  std::vector<std::pair<std::string, at::Tensor>> initializers_;
};

/// Writes m's nodes (any registered kind with an ONNX export, in inference mode) on input into
/// graph, its weights named path followed by their state-dict names ("layer1.0.conv1.weight"
/// for path "layer1.0.conv1."); returns the name of its output. Throws, naming the kind and
/// where it sits, for a kind that has no export.
std::string exportModuleOnnx(const torch::nn::Module& m, OnnxGraph& graph, const std::string& input,
                             const std::string& path);

/// m's children in order, each on the output of the one before (Sequential and its subclasses).
std::string exportChildrenOnnx(const torch::nn::Module& m, OnnxGraph& graph, const std::string& input,
                               const std::string& path);

/// x resized bilinearly to the height and width of like, as resizeBilinear (PyTorch's
/// align_corners=False, no antialiasing): ONNX Resize with the sizes taken from like's shape.
std::string resizeBilinearOnnx(OnnxGraph& graph, const std::string& x, const std::string& like);

/// ONNX's pads [top, left, bottom, right] for the same padding on both sides (PyTorch's
/// [height, width] padding).
std::vector<int64_t> symmetricPads(const torch::ExpandingArray<2>& padding);

/// A Conv node's attributes for a 2-d convolution's options (kernel_shape, strides, dilations,
/// group) with pads.
std::vector<OnnxAttribute> convAttributes(const torch::nn::detail::ConvNdOptions<2>& options,
                                          std::vector<int64_t> pads);

/// exportModuleOnnx of m's child called name, under path + name + ".".
std::string exportChildOnnx(const torch::nn::Module& m, const std::string& name, OnnxGraph& graph,
                            const std::string& input, const std::string& path);

}  // namespace fcn
