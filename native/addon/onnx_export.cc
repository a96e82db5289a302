// onnxGraph(module, ...): the module's ONNX nodes and weights as the kinds write them
// (models/onnx_graph.h), as plain JS values for src/onnx/ to serialise.
#include <cstring>

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "addon/torch_thread.h"
#include "core/describe.h"
#include "models/onnx_graph.h"
#include "models/registry.h"

namespace fcn {

namespace {

Napi::Object attributeOf(Napi::Env env, const OnnxAttribute& a) {
  auto out = Napi::Object::New(env);
  out.Set("name", a.name);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          out.Set("type", "int");
          out.Set("value", Napi::Number::New(env, static_cast<double>(v)));
        } else if constexpr (std::is_same_v<T, float>) {
          out.Set("type", "float");
          out.Set("value", Napi::Number::New(env, v));
        } else if constexpr (std::is_same_v<T, std::string>) {
          out.Set("type", "string");
          out.Set("value", v);
        } else {
          auto list = Napi::Array::New(env, v.size());
          for (size_t i = 0; i < v.size(); i++) list.Set(i, Napi::Number::New(env, static_cast<double>(v[i])));
          out.Set("type", "ints");
          out.Set("value", list);
        }
      },
      a.value);
  return out;
}

/// The shape of m's output for zeros of shape probe, run in eval mode (its mode is restored).
std::vector<int64_t> outputShape(torch::nn::Module& m, const std::vector<int64_t>& probe) {
  auto parameters = m.parameters();
  at::Device device = parameters.empty() ? at::Device(at::kCPU) : parameters.front().device();
  bool training = m.is_training();
  m.eval();
  try {
    at::Tensor y = forwardModule(m, at::zeros(probe, at::TensorOptions().device(device)));
    m.train(training);
    return y.sizes().vec();
  } catch (const std::exception& e) {
    m.train(training);
    throw std::invalid_argument("the model must take images [N, 3, H, W]; on " + shapeString(at::IntArrayRef(probe)) +
                                ": " + messageOf(e));
  }
}

/// An initializer's element type as src/onnx/ names it.
const char* dtypeName(at::ScalarType type) {
  switch (type) {
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kFloat: return "float32";
    default: throw std::logic_error(std::string("ONNX export: an initializer of type ") + c10::toString(type));
  }
}

/// The graph's weights as [{name, dtype, dims, data: Buffer}].
Napi::Array initializersOf(Napi::Env env, const OnnxGraph& graph) {
  auto initializers = Napi::Array::New(env, graph.initializers().size());
  for (size_t i = 0; i < graph.initializers().size(); i++) {
    const auto& [name, t] = graph.initializers()[i];
    auto entry = Napi::Object::New(env);
    entry.Set("name", name);
    entry.Set("dtype", dtypeName(t.scalar_type()));
    auto dims = Napi::Array::New(env, t.dim());
    for (int64_t d = 0; d < t.dim(); d++) dims.Set(static_cast<uint32_t>(d), Napi::Number::New(env, t.size(d)));
    entry.Set("dims", dims);
    size_t bytes = t.numel() * t.element_size();
    auto data = Napi::Buffer<uint8_t>::New(env, bytes);
    if (bytes > 0) std::memcpy(data.Data(), t.data_ptr(), bytes);
    entry.Set("data", data);
    initializers.Set(i, entry);
  }
  return initializers;
}

Napi::Array nodesOf(Napi::Env env, const OnnxGraph& graph) {
  auto nodes = Napi::Array::New(env, graph.nodes().size());
  for (size_t i = 0; i < graph.nodes().size(); i++) {
    const OnnxNode& n = graph.nodes()[i];
    auto node = Napi::Object::New(env);
    node.Set("op", n.op);
    auto inputs = Napi::Array::New(env, n.inputs.size());
    for (size_t j = 0; j < n.inputs.size(); j++) inputs.Set(j, n.inputs[j]);
    node.Set("inputs", inputs);
    node.Set("output", n.output);
    auto attributes = Napi::Array::New(env, n.attributes.size());
    for (size_t j = 0; j < n.attributes.size(); j++) attributes.Set(j, attributeOf(env, n.attributes[j]));
    node.Set("attributes", attributes);
    nodes.Set(i, node);
  }
  return nodes;
}

/// onnxGraph(module, input name, opset, probe shape, aux) -> a promise of {output, aux (the
/// auxiliary output's name, "" without), outputShape (for the probe's input), nodes: [{op,
/// inputs, output, attributes}], initializers: [{name, dtype, dims, data: Buffer}]}. The graph
/// is written on the torch thread, holding the model lock (the weights are copied there: a
/// training step cannot change them halfway through).
Napi::Value onnxGraph(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = Module::unwrap(info[0], "model");
  std::string input = toString(info[1], "input");
  int64_t opset = toInt(info[2], "opset");
  std::vector<int64_t> probe = toIntList(info[3], "probe");
  bool aux = toBool(info[4], "aux");
  return runAsync(info.Env(), [module, input, opset, probe, aux]() -> Settle {
    at::NoGradGuard noGrad;
    auto graph = std::make_shared<OnnxGraph>(opset, aux);
    std::string output = exportModuleOnnx(*module, *graph, input, "");
    if (aux && graph->auxOutput().empty()) {
      throw std::invalid_argument("aux: " + kindName(*module) +
                                  " has no auxiliary classifier (torchvision's models have one when built with aux)");
    }
    std::vector<int64_t> shape = outputShape(*module, probe);
    return [graph, output, shape](Napi::Env env) -> Napi::Value {
      auto result = Napi::Object::New(env);
      result.Set("output", output);
      result.Set("aux", graph->auxOutput());
      auto outShape = Napi::Array::New(env, shape.size());
      for (size_t i = 0; i < shape.size(); i++) {
        outShape.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
      }
      result.Set("outputShape", outShape);
      result.Set("nodes", nodesOf(env, *graph));
      result.Set("initializers", initializersOf(env, *graph));
      return result;
    };
  });
}

}  // namespace

void initOnnx(Napi::Env env, Napi::Object exports) { exports.Set("onnxGraph", Napi::Function::New<onnxGraph>(env)); }

}  // namespace fcn
