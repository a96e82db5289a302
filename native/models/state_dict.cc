#include "models/state_dict.h"

#include <map>
#include <set>
#include <sstream>

#include "core/describe.h"
#include "models/registry.h"

namespace fcn {

namespace {

void collect(const torch::nn::Module& m, const std::string& prefix, NamedTensors& out) {
  for (const auto& p : m.named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : m.named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& c : m.named_children()) collect(*c.value(), prefix + c.key() + ".", out);
}

std::string joinNames(const std::vector<std::string>& names) {
  std::ostringstream out;
  for (size_t i = 0; i < names.size() && i < 12; ++i) out << (i ? ", " : "") << names[i];
  if (names.size() > 12) out << ", ... (" << names.size() - 12 << " more)";
  return out.str();
}

}  // namespace

NamedTensors stateDict(const torch::nn::Module& m) {
  NamedTensors out;
  collect(m, "", out);
  return out;
}

LoadReport loadStateDict(torch::nn::Module& m, const NamedTensors& given, bool strict) {
  std::map<std::string, at::Tensor> byName;
  for (const auto& [name, tensor] : given) byName[name] = tensor;  // the last of a repeated name wins
  NamedTensors own = stateDict(m);
  LoadReport report;
  std::vector<std::string> mismatched;
  std::set<std::string> known;
  for (const auto& [name, tensor] : own) {
    known.insert(name);
    auto it = byName.find(name);
    if (it == byName.end()) {
      report.missingKeys.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(name + " (given " + shapeString(it->second) + ", model has " + shapeString(tensor) + ")");
    }
  }
  for (const auto& [name, tensor] : given) {
    if (!known.count(name)) report.unexpectedKeys.push_back(name);
  }
  std::ostringstream problems;
  if (!mismatched.empty()) problems << "shape mismatch for " << joinNames(mismatched) << ". ";
  if (strict && !report.missingKeys.empty()) problems << "missing keys: " << joinNames(report.missingKeys) << ". ";
  if (strict && !report.unexpectedKeys.empty()) {
    problems << "unexpected keys: " << joinNames(report.unexpectedKeys) << ". ";
  }
  if (!problems.str().empty()) throw std::invalid_argument("loadStateDict: " + problems.str() + "Nothing was loaded.");
  at::NoGradGuard noGrad;
  for (auto& [name, tensor] : own) {
    auto it = byName.find(name);
    if (it != byName.end()) tensor.copy_(it->second);
  }
  return report;
}

void copyState(const torch::nn::Module& src, torch::nn::Module& dst, const std::optional<torch::Device>& device) {
  if (device) dst.to(*device);
  at::NoGradGuard noGrad;
  auto copyAll = [&](const auto& from, auto to) {
    for (const auto& item : from) {
      at::Tensor* target = to.find(item.key());
      if (target == nullptr) throw std::logic_error("clone of " + kindName(src) + " lacks '" + item.key() + "'");
      target->copy_(item.value());
      target->set_requires_grad(item.value().requires_grad());
    }
  };
  copyAll(src.named_parameters(true), dst.named_parameters(true));
  copyAll(src.named_buffers(true), dst.named_buffers(true));
  // Each module's own mode (a BatchNorm frozen in eval mode inside a training model stays
  // so); modules() is pre-order, so a parent's recursive train() comes before its children's.
  auto from = src.modules(true), to = dst.modules(true);
  if (from.size() != to.size()) {
    dst.train(src.is_training());
    return;
  }
  for (size_t i = 0; i < from.size(); ++i) to[i]->train(from[i]->is_training());
}

}  // namespace fcn
