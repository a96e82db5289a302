#include "models/sequential.h"

#include "core/describe.h"
#include "models/registry.h"

namespace fcn {

namespace {
std::shared_ptr<torch::nn::Module> create(const LayerOptions&) { return std::make_shared<Sequential>(); }
[[maybe_unused]] const bool registered = registerKind<Sequential>("Sequential", create);
}  // namespace

void Sequential::append(const std::string& name, std::shared_ptr<torch::nn::Module> m) {
  for (const auto& inner : m->modules(true)) {
    if (inner.get() == this) throw std::invalid_argument("a Sequential cannot contain itself");
  }
  register_module(name.empty() ? std::to_string(children().size()) : name, std::move(m));
}

at::Tensor Sequential::forward(const at::Tensor& input) {
  at::Tensor x = input;
  for (const auto& child : named_children()) {
    try {
      x = forwardModule(*child.value(), x);
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
