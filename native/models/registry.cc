#include "models/registry.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "core/channel_argmax.h"
#include "core/describe.h"

namespace fcn {

namespace {

struct Registry {
  std::unordered_map<std::type_index, ModuleKind> byType;
  std::vector<std::string> creatable;  // names built from options, for messages
};

/// Built on first use: kinds register during static initialisation, in any order.
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

namespace detail {
void addKind(std::type_index type, ModuleKind kind) {
  Registry& r = registry();
  if (kind.create) r.creatable.push_back(kind.name);
  r.byType.emplace(type, std::move(kind));
}
}  // namespace detail

OnnxFn onnxExportOf(const torch::nn::Module& m) {
  const ModuleKind* kind = kindOf(m);
  return kind == nullptr ? nullptr : kind->onnx;
}

std::vector<const ModuleKind*> allKinds() {
  std::vector<const ModuleKind*> kinds;
  for (const auto& [type, kind] : registry().byType) kinds.push_back(&kind);
  std::sort(kinds.begin(), kinds.end(), [](const ModuleKind* a, const ModuleKind* b) { return a->name < b->name; });
  return kinds;
}

const ModuleKind* kindOf(const torch::nn::Module& m) {
  const auto& byType = registry().byType;
  auto it = byType.find(typeid(m));
  return it == byType.end() ? nullptr : &it->second;
}

std::string kindName(const torch::nn::Module& m) {
  const ModuleKind* kind = kindOf(m);
  return kind ? kind->name : "Module";
}

std::shared_ptr<torch::nn::Module> createLayer(const std::string& name, const LayerOptions& options) {
  for (const auto& [type, kind] : registry().byType) {
    if (kind.name == name && kind.create) return kind.create(options);
  }
  throw std::invalid_argument("unknown layer kind '" + name +
                              "'; layers built from options: " + c10::Join(", ", registry().creatable));
}

void checkReady(const torch::nn::Module& m) {
  const ModuleKind* kind = kindOf(m);
  if (kind != nullptr && kind->ready != nullptr) kind->ready(m);
}

at::Tensor forwardModule(torch::nn::Module& m, const at::Tensor& x) {
  const ModuleKind* kind = kindOf(m);
  if (kind == nullptr) throw std::invalid_argument("module " + m.name() + " has no forward registered");
  return kind->forward(m, x);
}

at::Tensor forwardModuleLabels(torch::nn::Module& m, const at::Tensor& x) {
  const ModuleKind* kind = kindOf(m);
  if (kind != nullptr && kind->labels != nullptr) return kind->labels(m, x);
  return labelsOf(m, forwardModule(m, x));
}

at::Tensor labelsOf(const torch::nn::Module& m, const at::Tensor& scores) {
  if (scores.dim() != 4) {
    throw std::invalid_argument("labels are the argmax over the classes of logits [N, classes, H, W], but " +
                                kindName(m) + " gave " + shapeString(scores));
  }
  return channelArgmax(scores);
}

NamedOutputs forwardModuleOutputs(torch::nn::Module& m, const at::Tensor& x) {
  const ModuleKind* kind = kindOf(m);
  if (kind != nullptr && kind->outputs != nullptr) return kind->outputs(m, x);
  return {{"out", forwardModule(m, x)}};
}

}  // namespace fcn
