#include "models/sequential.h"

#include "core/describe.h"
#include "models/registry.h"

namespace fcn {

namespace {
std::shared_ptr<torch::nn::Module> create(const LayerOptions&) { return std::make_shared<Sequential>(); }
[[maybe_unused]] const bool registered = registerKind<Sequential>("Sequential", create);

/// How many children from i form a Conv2d, BatchNorm2d(, ReLU) run: 3 with the ReLU, 2
/// without, 0 where none starts.
size_t convBnRun(const torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>>& children, size_t i) {
  auto is = [&](size_t j, const std::type_info& type) {
    if (j >= children.size()) return false;
    const torch::nn::Module& child = *children[j].value();
    return typeid(child) == type;
  };
  if (!is(i, typeid(torch::nn::Conv2dImpl)) || !is(i + 1, typeid(torch::nn::BatchNorm2dImpl))) return 0;
  return is(i + 2, typeid(torch::nn::ReLUImpl)) ? 3 : 2;
}
}  // namespace

void Sequential::append(const std::string& name, std::shared_ptr<torch::nn::Module> m) {
  for (const auto& inner : m->modules(true)) {
    if (inner.get() == this) throw std::invalid_argument("a Sequential cannot contain itself");
  }
  register_module(name.empty() ? std::to_string(children().size()) : name, std::move(m));
}

at::Tensor Sequential::forward(const at::Tensor& input) {
  at::Tensor x = input;
  auto children = named_children();
  for (size_t i = 0; i < children.size();) {
    const auto& child = children[i];
    try {
      size_t fused = folded_.fuses(*this, x) ? convBnRun(children, i) : 0;
      if (fused > 0) {
        x = folded_.run(static_cast<torch::nn::Conv2dImpl&>(*child.value()),
                        static_cast<torch::nn::BatchNorm2dImpl&>(*children[i + 1].value()), x, fused == 3);
      } else {
        x = forwardModule(*child.value(), x);
      }
      i += std::max<size_t>(fused, 1);
    } catch (const std::exception& e) {
      throw std::runtime_error("in '" + child.key() + "' (" + kindName(*child.value()) + "): " + messageOf(e));
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
