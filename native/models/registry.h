// The one list of module kinds. Each kind is registered once, next to its definition, with
// its name (what TypeScript's `module.kind` says and which class wraps it), how it runs
// (forward, found by the module's dynamic type) and, for the layers TypeScript builds from
// an options object, how it is made, and for models with named outputs (torchvision's
// segmentation models give {out, aux}) how those are computed, and how it is exported to ONNX.
// Cloning is libtorch's own virtual Module::clone. Adding a layer is one registerKind row beside
// its definition (and one class in src/nn; ARCHITECTURE.md walks through it).
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <string>
#include <typeindex>
#include <vector>

namespace fcn {

/// The options a layer is built from, as TypeScript's options objects hold them (the addon
/// reads them from JS; the model layer sees only this interface).
class LayerOptions {
 public:
  virtual ~LayerOptions() = default;
  virtual int64_t integer(const char* key) const = 0;
  virtual double number(const char* key) const = 0;
  virtual bool flag(const char* key) const = 0;
  virtual std::string text(const char* key) const = 0;
  /// [h, w].
  virtual std::array<int64_t, 2> pair(const char* key) const = 0;
  /// Whether key is given (not undefined).
  virtual bool has(const char* key) const = 0;
};

/// Named outputs in order, the first being the main one ("out"): what a model with several
/// outputs gives (torchvision's segmentation models: out, then aux when they have it).
using NamedOutputs = std::vector<std::pair<std::string, at::Tensor>>;

using ForwardFn = at::Tensor (*)(torch::nn::Module&, const at::Tensor&);
using CreateFn = std::shared_ptr<torch::nn::Module> (*)(const LayerOptions&);
using OutputsFn = NamedOutputs (*)(torch::nn::Module&, const at::Tensor&);
using ReadyFn = void (*)(const torch::nn::Module&);
using LabelsFn = at::Tensor (*)(torch::nn::Module&, const at::Tensor&);

class OnnxGraph;
/// Writes the module's ONNX nodes on input into the graph, its weights named path + their
/// state-dict names; returns its output's name (models/onnx_graph.h).
using OnnxFn = std::string (*)(const torch::nn::Module&, OnnxGraph&, const std::string& input, const std::string& path);

/// A registry row: what the registry knows of one kind, written with designated initializers
/// (`registerKind<Impl>({.name = "Conv2d", .create = conv2d, .onnx = conv2dOnnx})`); every field but
/// the name may be left out.
struct ModuleKind {
  std::string name;             // what TypeScript's `module.kind` says; its class in src/ registers the same
  CreateFn create = nullptr;    // null for the models made by their own builders (ResNet, FCN16s, ...)
  ForwardFn forward = nullptr;  // null: Impl::forward
  OutputsFn outputs = nullptr;  // null for the kinds whose only output is forward's
  ReadyFn ready = nullptr;      // throws when the module cannot run as it stands; null: it always can
  LabelsFn labels = nullptr;    // argmax over forward's channels, made without its full-size scores; null: from them
  OnnxFn onnx = nullptr;        // writes its ONNX nodes (models/onnx_graph.h); null: the kind does not export
};

namespace detail {
void addKind(std::type_index type, ModuleKind kind);
template <class Impl>
at::Tensor plainForward(torch::nn::Module& m, const at::Tensor& x) {
  return static_cast<Impl&>(m).forward(x);
}
}  // namespace detail

/// Registers the module type Impl (a torch::nn::Module) as kind; its forward defaults to
/// Impl::forward where Impl has one. Used as `const bool registered = registerKind<Impl>({...})` at namespace scope
/// (after the functions the row names), so that the kind exists before any module is made.
template <class Impl>
bool registerKind(ModuleKind kind) {
  if constexpr (requires(Impl & m, const at::Tensor& x) { m.forward(x); }) {
    if (kind.forward == nullptr) kind.forward = &detail::plainForward<Impl>;
  }
  detail::addKind(typeid(Impl), std::move(kind));
  return true;
}

/// Every registered kind, by name (for the addon's `moduleKinds`, which tests hold against
/// TypeScript's classes).
std::vector<const ModuleKind*> allKinds();

/// How m's kind is exported to ONNX; nullptr for a kind without an export.
OnnxFn onnxExportOf(const torch::nn::Module& m);

/// The kind of m by its dynamic type; nullptr for a type never registered.
const ModuleKind* kindOf(const torch::nn::Module& m);

/// The name TypeScript uses for m ("Conv2d", "Sequential", ...); "Module" when unregistered.
std::string kindName(const torch::nn::Module& m);

/// Builds a layer of the kind named name from options; throws for an unknown name or a
/// kind that is not built from options, listing those that are.
std::shared_ptr<torch::nn::Module> createLayer(const std::string& name, const LayerOptions& options);

/// Throws, saying why, when m's kind says it cannot run as it stands (an Int8Model whose float
/// model changed): runModel asks before it checks the input against m's weights.
void checkReady(const torch::nn::Module& m);

/// Runs m (any registered kind) on x. Model entry points go through runModel instead.
at::Tensor forwardModule(torch::nn::Module& m, const at::Tensor& x);

/// The argmax over channels of forwardModule(m, x) (a 4-d output), int64 [N, H, W]: by m's kind
/// where it can give the labels without the full-size scores (a sub-pixel upsampling last), else
/// channelArgmax of the output.
at::Tensor forwardModuleLabels(torch::nn::Module& m, const at::Tensor& x);

/// channelArgmax(scores), m's output, after checking that they are logits [N, classes, H, W].
at::Tensor labelsOf(const torch::nn::Module& m, const at::Tensor& scores);

/// m's named outputs for x: its kind's outputs, or {"out": forward} for the kinds with one.
NamedOutputs forwardModuleOutputs(torch::nn::Module& m, const at::Tensor& x);

}  // namespace fcn
