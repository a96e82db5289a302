#include "models/sequential.h"

#include "core/describe.h"
#include "models/onnx_graph.h"
#include "models/registry.h"

namespace fcn {

namespace {
std::shared_ptr<torch::nn::Module> create(const LayerOptions&) { return std::make_shared<Sequential>(); }
at::Tensor labels(torch::nn::Module& m, const at::Tensor& x) { return static_cast<Sequential&>(m).labels(x); }
// Its ONNX nodes are its children's in order (unfused: ONNX runtimes fold BatchNorm themselves).
[[maybe_unused]] const bool registered =
    registerKind<Sequential>({.name = "Sequential", .create = create, .labels = labels, .onnx = exportChildrenOnnx});

/// How many children in [i, end) form a Conv2d, BatchNorm2d(, ReLU) run from i: 3 with the
/// ReLU, 2 without, 0 where none starts.
size_t convBnRun(const torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>>& children, size_t i,
                 size_t end) {
  auto is = [&](size_t j, const std::type_info& type) {
    if (j >= end) return false;
    const torch::nn::Module& child = *children[j].value();
    return typeid(child) == type;
  };
  if (!is(i, typeid(torch::nn::Conv2dImpl)) || !is(i + 1, typeid(torch::nn::BatchNorm2dImpl))) return 0;
  return is(i + 2, typeid(torch::nn::ReLUImpl)) ? 3 : 2;
}
/// e, thrown by child, again with the child's name and kind in front.
[[noreturn]] void rethrowIn(const torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>>::Item& child,
                            const std::exception& e) {
  throw std::runtime_error("in '" + child.key() + "' (" + kindName(*child.value()) + "): " + messageOf(e));
}
}  // namespace

void Sequential::append(const std::string& name, std::shared_ptr<torch::nn::Module> m) {
  for (const auto& inner : m->modules(true)) {
    if (inner.get() == this) throw std::invalid_argument("a Sequential cannot contain itself");
  }
  register_module(name.empty() ? std::to_string(children().size()) : name, std::move(m));
}

at::Tensor Sequential::forward(const at::Tensor& input) { return runChildren(input, children().size()); }

at::Tensor Sequential::labels(const at::Tensor& input) {
  auto children = named_children();
  if (children.is_empty()) return labelsOf(*this, input);
  at::Tensor x = runChildren(input, children.size() - 1);
  const auto& last = children[children.size() - 1];
  try {
    return forwardModuleLabels(*last.value(), x);
  } catch (const std::exception& e) {
    rethrowIn(last, e);
  }
}

at::Tensor Sequential::runChildren(const at::Tensor& input, size_t end) {
  at::Tensor x = input;
  auto children = named_children();
  for (size_t i = 0; i < end;) {
    const auto& child = children[i];
    try {
      size_t fused = folded_.fuses(*this, x) ? convBnRun(children, i, end) : 0;
      if (fused > 0) {
        x = folded_.run(static_cast<torch::nn::Conv2dImpl&>(*child.value()),
                        static_cast<torch::nn::BatchNorm2dImpl&>(*children[i + 1].value()), x, fused == 3);
      } else {
        x = forwardModule(*child.value(), x);
      }
      i += std::max<size_t>(fused, 1);
    } catch (const std::exception& e) {
      rethrowIn(child, e);
    }
  }
  return x;
}

std::shared_ptr<torch::nn::Module> Sequential::clone(const std::optional<torch::Device>& device) const {
  auto copy = std::make_shared<Sequential>();
  for (const auto& child : named_children()) copy->append(child.key(), child.value()->clone(device));
  copy->train(is_training());
  return copy;
}

}  // namespace fcn
