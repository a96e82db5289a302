#include "models/onnx_graph.h"

#include <stdexcept>

#include "models/registry.h"

namespace fcn {

std::string OnnxGraph::add(const std::string& op, std::vector<std::string> inputs,
                           std::vector<OnnxAttribute> attributes) {
  std::string output = op + "_" + std::to_string(names_++);
  nodes_.push_back(OnnxNode{op, std::move(inputs), output, std::move(attributes)});
  return output;
}

std::string OnnxGraph::weight(const std::string& name, const at::Tensor& w) {
  // A copy: the weights must not change under the export, nor after it while the file is written.
  at::ScalarType type = w.is_floating_point() ? at::kFloat : w.scalar_type();
  initializers_.emplace_back(name, w.detach().to(at::kCPU, type, false, true).contiguous());
  return name;
}

std::string OnnxGraph::constant(const at::Tensor& t) { return weight("const_" + std::to_string(names_++), t); }

std::string OnnxGraph::ints(const std::vector<int64_t>& values) { return constant(at::tensor(values, at::kLong)); }

std::string OnnxGraph::filled(int64_t n, float value) { return constant(at::full({n}, value, at::kFloat)); }

std::string exportModuleOnnx(const torch::nn::Module& m, OnnxGraph& graph, const std::string& input,
                             const std::string& path) {
  OnnxFn fn = onnxExportOf(m);
  if (fn == nullptr) {
    std::string where = path.empty() ? "the model itself" : "'" + path.substr(0, path.size() - 1) + "'";
    throw std::invalid_argument("layer kind " + kindName(m) + " (" + where + ") has no ONNX export");
  }
  return fn(m, graph, input, path);
}

std::string exportChildrenOnnx(const torch::nn::Module& m, OnnxGraph& graph, const std::string& input,
                               const std::string& path) {
  std::string x = input;
  for (const auto& child : m.named_children()) x = exportModuleOnnx(*child.value(), graph, x, path + child.key() + ".");
  return x;
}

std::string resizeBilinearOnnx(OnnxGraph& graph, const std::string& x, const std::string& like) {
  auto slice = [&](const std::string& of, int64_t from, int64_t to) {
    return graph.add("Slice", {graph.add("Shape", {of}), graph.ints({from}), graph.ints({to})});
  };
  std::string sizes = graph.add("Concat", {slice(x, 0, 2), slice(like, 2, 4)}, {{"axis", int64_t{0}}});
  return graph.add(
      "Resize", {x, "", "", sizes},
      {{"mode", std::string("linear")}, {"coordinate_transformation_mode", std::string("pytorch_half_pixel")}});
}

std::vector<int64_t> symmetricPads(const torch::ExpandingArray<2>& padding) {
  return {padding->at(0), padding->at(1), padding->at(0), padding->at(1)};
}

std::vector<OnnxAttribute> convAttributes(const torch::nn::detail::ConvNdOptions<2>& options,
                                          std::vector<int64_t> pads) {
  auto hw = [](const torch::ExpandingArray<2>& a) { return std::vector<int64_t>{a->at(0), a->at(1)}; };
  return {{"kernel_shape", hw(options.kernel_size())},
          {"strides", hw(options.stride())},
          {"pads", std::move(pads)},
          {"dilations", hw(options.dilation())},
          {"group", options.groups()}};
}

std::string exportChildOnnx(const torch::nn::Module& m, const std::string& name, OnnxGraph& graph,
                            const std::string& input, const std::string& path) {
  const auto* child = m.named_children().find(name);
  if (child == nullptr) throw std::logic_error(kindName(m) + " has no child '" + name + "'");
  return exportModuleOnnx(**child, graph, input, path + name + ".");
}

}  // namespace fcn
