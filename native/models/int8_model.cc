// The int8 model (see int8_model.h): the plan of the body's steps, their float32 calibration
// run, their quantization and their int8 run.
#include "models/int8_model.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <variant>

#include "core/describe.h"
#include "models/fused_conv.h"
#include "models/onnx_graph.h"
#include "models/registry.h"

namespace fcn {

namespace {
/// Before any input check: a model whose float model changed says so (its layers' dtype
/// would otherwise be blamed on the input).
void checkCurrent(const torch::nn::Module& m) {
  const auto& model = static_cast<const Int8Model&>(m);
  if (model.frozen()) model.checkSource("after it was quantized");
}

using PackedConv = c10::intrusive_ptr<ConvPackedParamsBase<2>>;

/// An activation's scale and zero point.
struct QParams {
  double scale = 1;
  int64_t zeroPoint = 0;
};

/// The range an activation took over the calibration batches (PyTorch's MinMaxObserver).
struct Range {
  double lo = 0, hi = 0;
  void widen(const at::Tensor& t) {
    auto [min, max] = at::aminmax(t);
    lo = std::min(lo, min.item<double>());
    hi = std::max(hi, max.item<double>());
  }
  /// uint8 in 7 bits (0..127) over [min(lo, 0), max(hi, 0)], in float32 as PyTorch's
  /// observers compute it (its 'x86' qconfig).
  QParams params() const {
    if (!std::isfinite(lo) || !std::isfinite(hi)) {
      throw std::invalid_argument("quantizeInt8: the calibration images gave activations that are not finite (" +
                                  std::to_string(lo) + " to " + std::to_string(hi) +
                                  "); check them for NaN or infinite values");
    }
    constexpr float qmax = 127;
    float scale =
        std::max((static_cast<float>(hi) - static_cast<float>(lo)) / qmax, std::numeric_limits<float>::epsilon());
    auto zeroPoint = static_cast<int64_t>(std::nearbyint(-static_cast<float>(lo) / scale));
    return {scale, std::clamp<int64_t>(zeroPoint, 0, static_cast<int64_t>(qmax))};
  }
};

/// conv's weight and bias with bn folded in, in float32 as PyTorch's quantization folds them
/// (torch.nn.utils.fusion.fuse_conv_bn_weights), so that the int8 weights are PyTorch's to the
/// bit: folding in another order moves a few weights by a step, which a deep network carries
/// to its output.
std::pair<at::Tensor, at::Tensor> foldAsPyTorch(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn) {
  c10::InferenceMode normalTensors(false);
  at::NoGradGuard noGrad;
  at::Tensor rsqrt = at::rsqrt(bn.running_var + bn.options.eps());
  at::Tensor gamma = bn.weight.defined() ? bn.weight : at::ones_like(bn.running_var);
  at::Tensor beta = bn.bias.defined() ? bn.bias : at::zeros_like(bn.running_var);
  at::Tensor convBias = conv.bias.defined() ? conv.bias : at::zeros_like(bn.running_var);
  at::Tensor weight = conv.weight * (gamma * rsqrt).reshape({-1, 1, 1, 1});
  return {weight.contiguous(), ((convBias - bn.running_mean) * rsqrt * gamma + beta).contiguous()};
}

/// A Conv2d with the BatchNorm after it, folded: float32 for calibration, then int8.
struct QConv {
  std::shared_ptr<torch::nn::Conv2dImpl> conv;
  std::string name;  // where it sits in the float model ("layer1.0.conv1"), its weights' names in ONNX
  at::Tensor weight, bias;
  Range range;  // of its output (after the ReLU where it has one; before a residual add)
  QParams out;
  PackedConv packed;

  QConv(const std::shared_ptr<torch::nn::Conv2dImpl>& c, torch::nn::BatchNorm2dImpl& bn, const std::string& where)
      : conv(c), name(where) {
    if (!foldable(*c, bn) || c->weight.scalar_type() != at::kFloat ||
        bn.options.num_features() != c->options.out_channels()) {
      throw std::invalid_argument("quantizeInt8: " + where +
                                  " cannot be folded into int8 (a float32 Conv2d with zero padding followed by a "
                                  "BatchNorm2d of its channels with running statistics is needed)");
    }
    std::tie(weight, bias) = foldAsPyTorch(*c, bn);
  }

  at::Tensor observe(const at::Tensor& x, bool relu) {
    const auto& o = conv->options;
    at::Tensor y = at::conv2d(x, weight, bias, o.stride(), std::get<torch::ExpandingArray<2>>(o.padding()),
                              o.dilation(), o.groups());
    if (relu) y.relu_();
    range.widen(y);
    return y;
  }

  /// Output scale from the range; weights per output channel, symmetric over [-128, 127]
  /// (scale = max |w| / 127.5, as PyTorch's per-channel symmetric observer), packed.
  void freeze() {
    c10::InferenceMode normalTensors(false);
    out = range.params();
    at::Tensor w = weight.contiguous();
    at::Tensor scales =
        (w.abs().amax({1, 2, 3}) / 127.5).clamp_min(std::numeric_limits<float>::epsilon()).to(at::kDouble);
    at::Tensor q = at::quantize_per_channel(w, scales, at::zeros(scales.sizes(), at::kLong), 0, at::kQInt8);
    const auto& o = conv->options;
    auto list = [](c10::IntArrayRef v) { return c10::IValue(v.vec()); };
    static const c10::OperatorHandle prepack =
        c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d_prepack", "");
    torch::jit::Stack stack{q,
                            bias,
                            list(o.stride()),
                            list(std::get<torch::ExpandingArray<2>>(o.padding())),
                            list(o.dilation()),
                            c10::IValue(o.groups())};
    prepack.callBoxed(&stack);
    packed = stack.at(0).toCustomClass<ConvPackedParamsBase<2>>();
  }

  /// The float weights, once every conv is packed: the packed copy is all the int8 run needs.
  void dropFloat() { weight = bias = at::Tensor(); }

  at::Tensor run(const at::Tensor& q, bool relu) const {
    return relu ? packed->apply_relu(q, out.scale, out.zeroPoint) : packed->apply(q, out.scale, out.zeroPoint);
  }

  /// The convolution in QDQ form on x, an activation quantized at in: int8 weights with their
  /// per-channel scales, the bias in int32 at scale in.scale * weight scale (as ONNX Runtime's
  /// QLinearConv adds it), the ReLU, and the output quantized at out.
  std::string onnx(OnnxGraph& g, const std::string& x, const QParams& in, bool relu, const std::string& path) const;
};

/// x rounded to the uint8 grid of p and back: QuantizeLinear, then DequantizeLinear.
std::string qdq(OnnxGraph& g, const std::string& x, const QParams& p) {
  std::string scale = g.constant(at::scalar_tensor(p.scale, at::kFloat));
  std::string zeroPoint = g.constant(at::scalar_tensor(p.zeroPoint, at::kByte));
  return g.add("DequantizeLinear", {g.add("QuantizeLinear", {x, scale, zeroPoint}), scale, zeroPoint});
}

std::string QConv::onnx(OnnxGraph& g, const std::string& x, const QParams& in, bool relu,
                        const std::string& path) const {
  auto [qweight, qbias] = packed->unpack();
  at::Tensor scales = qweight.q_per_channel_scales().to(at::kDouble);
  std::string at = path + name + ".";
  std::string weight = g.add("DequantizeLinear",
                             {g.weight(at + "weight", qweight.int_repr()), g.weight(at + "weight_scale", scales),
                              g.weight(at + "weight_zero_point", at::zeros(scales.sizes(), at::kChar))},
                             {{"axis", int64_t{0}}});
  std::vector<std::string> inputs{x, weight};
  if (qbias && qbias->defined()) {
    at::Tensor biasScales = scales * in.scale;
    at::Tensor bias = at::round(qbias->to(at::kDouble) / biasScales).clamp(INT32_MIN, INT32_MAX).to(at::kInt);
    inputs.push_back(g.add("DequantizeLinear", {g.weight(at + "bias", bias), g.weight(at + "bias_scale", biasScales)},
                           {{"axis", int64_t{0}}}));
  }
  const auto& o = conv->options;
  std::string y =
      g.add("Conv", inputs, convAttributes(o, symmetricPads(std::get<torch::ExpandingArray<2>>(o.padding()))));
  if (relu) y = g.add("Relu", {y});
  return qdq(g, y, out);
}

/// quantized::add_relu(qa, qb, scale, zero_point): relu(a + b) requantized.
at::Tensor addRelu(const at::Tensor& a, const at::Tensor& b, const QParams& out) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("quantized::add_relu", "")
                             .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
  return op.call(a, b, out.scale, out.zeroPoint);
}

/// conv (+ BatchNorm) (+ ReLU) at the start of the body.
struct ConvStep {
  QConv conv;
  bool relu;
};

/// max pooling, which takes int8 tensors as they are.
struct PoolStep {
  std::shared_ptr<torch::nn::MaxPool2dImpl> pool;
};

/// A ResNet block: relu(convs(x) + identity), identity = downsample(x) or x; a ReLU follows
/// each conv but the last.
struct BlockStep {
  std::vector<QConv> convs;
  std::optional<QConv> downsample;
  Range range;  // of the block's output
  QParams out;
};

using Step = std::variant<ConvStep, PoolStep, BlockStep>;

/// fn(conv) for each folded conv of steps.
template <class Fn>
void forEachConv(std::vector<Step>& steps, const Fn& fn) {
  for (auto& step : steps) {
    if (auto* c = std::get_if<ConvStep>(&step)) fn(c->conv);
    if (auto* b = std::get_if<BlockStep>(&step)) {
      for (auto& conv : b->convs) fn(conv);
      if (b->downsample) fn(*b->downsample);
    }
  }
}

template <class Impl>
std::shared_ptr<Impl> childAs(torch::nn::Module& m, const std::string& name) {
  for (const auto& item : m.named_children()) {
    if (item.key() == name) return std::dynamic_pointer_cast<Impl>(item.value());
  }
  return nullptr;
}

/// block's convs (conv1, conv2[, conv3]) with their BatchNorms, and its downsample.
BlockStep blockStep(torch::nn::Module& block, const std::string& where) {
  BlockStep step;
  for (int i = 1;; ++i) {
    auto conv = childAs<torch::nn::Conv2dImpl>(block, "conv" + std::to_string(i));
    auto bn = childAs<torch::nn::BatchNorm2dImpl>(block, "bn" + std::to_string(i));
    if (!conv || !bn) break;
    step.convs.emplace_back(conv, *bn, where + ".conv" + std::to_string(i));
  }
  if (step.convs.size() < 2) throw std::invalid_argument("quantizeInt8: " + where + " has no conv1, bn1, conv2, bn2");
  if (auto downsample = childAs<torch::nn::Module>(block, "downsample")) {
    auto conv = childAs<torch::nn::Conv2dImpl>(*downsample, "0");
    auto bn = childAs<torch::nn::BatchNorm2dImpl>(*downsample, "1");
    if (!conv || !bn) throw std::invalid_argument("quantizeInt8: " + where + ".downsample is not Conv2d, BatchNorm2d");
    step.downsample.emplace(conv, *bn, where + ".downsample");
  }
  return step;
}

bool isBlock(const torch::nn::Module& m) {
  std::string kind = kindName(m);
  return kind == "BasicBlock" || kind == "Bottleneck";
}

/// What the int8 model was made from, per tensor of m (its parameters and buffers): the
/// TensorImpl, its version, device and dtype (a training step, an optimizer update,
/// loadStateDict or to() moves one; the channels-last relayout keeps them all), and m's
/// modules, so that a layer added later shows too.
using Stamps = std::vector<std::tuple<const void*, int64_t, c10::Device, at::ScalarType>>;
Stamps stampsOf(const torch::nn::Module& m) {
  Stamps stamps;
  auto add = [&](const at::Tensor& t) {
    stamps.emplace_back(t.unsafeGetTensorImpl(), t.defined() && !t.is_inference() ? t._version() : -1,
                        t.defined() ? t.device() : c10::Device(c10::kCPU),
                        t.defined() ? t.scalar_type() : at::ScalarType::Undefined);
  };
  for (const auto& p : m.parameters(true)) add(p);
  for (const auto& b : m.buffers(true)) add(b);
  for (const auto& child : m.modules(false)) stamps.emplace_back(child.get(), -2, c10::kCPU, at::ScalarType::Undefined);
  return stamps;
}

}  // namespace

struct Int8Model::Plan {
  std::vector<Step> steps;
  Range inputRange;
  QParams input;
  std::vector<std::shared_ptr<torch::nn::Module>> tail;
  int64_t observed = 0;
  bool frozen = false;
  Stamps sourceStamps;  // taken when the body is folded
};

Int8Model::Int8Model(std::shared_ptr<torch::nn::Module> source)
    : torch::nn::Module("Int8Model"), source_(std::move(source)), plan_(std::make_unique<Plan>()) {
  if (kindName(*source_) != "Sequential") {
    throw std::invalid_argument(
        "quantizeInt8: the model must be a Sequential whose first layers are a ResNet body "
        "(the chapter's FCN-32s), got " +
        kindName(*source_));
  }
  for (const auto& p : source_->parameters(true)) {
    if (!p.device().is_cpu() || p.scalar_type() != at::kFloat) {
      throw std::invalid_argument("quantizeInt8: the model must be float32 on the CPU, got a parameter " +
                                  describeTensor(p));
    }
  }
  source_->train(false);
  auto children = source_->named_children();
  size_t i = 0;
  for (; i < children.size(); ++i) {
    const std::string& name = children[i].key();
    const std::shared_ptr<torch::nn::Module>& child = children[i].value();
    if (auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(child)) {
      auto bn = i + 1 < children.size() ? std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(children[i + 1].value())
                                        : nullptr;
      if (!bn) break;  // a Conv2d alone (the classifier) starts the float layers
      bool relu = i + 2 < children.size() && kindName(*children[i + 2].value()) == "ReLU";
      plan_->steps.emplace_back(ConvStep{QConv(conv, *bn, name), relu});
      i += relu ? 2 : 1;
    } else if (auto pool = std::dynamic_pointer_cast<torch::nn::MaxPool2dImpl>(child)) {
      plan_->steps.emplace_back(PoolStep{pool});
    } else if (isBlock(*child)) {
      plan_->steps.emplace_back(blockStep(*child, name));
    } else if (kindName(*child) == "Sequential" && !child->children().empty()) {
      bool blocks = true;
      for (const auto& block : child->children()) blocks = blocks && isBlock(*block);
      if (!blocks) break;
      for (const auto& block : child->named_children()) {
        plan_->steps.emplace_back(blockStep(*block.value(), name + "." + block.key()));
      }
    } else {
      break;
    }
  }
  if (plan_->steps.empty()) {
    throw std::invalid_argument(
        "quantizeInt8: the model does not start with a ResNet body (Conv2d, BatchNorm2d, ...); "
        "its first layer is " +
        (children.is_empty() ? std::string("missing") : kindName(*children[0].value())));
  }
  for (; i < children.size(); ++i) {
    plan_->tail.push_back(register_module(children[i].key(), children[i].value()));
  }
  plan_->sourceStamps = stampsOf(*source_);
}

void Int8Model::checkSource(const char* when) const {
  if (stampsOf(*source_) != plan_->sourceStamps) {
    throw std::logic_error(std::string("Int8Model: the float model changed ") + when +
                           " (its weights, device, dtype or layers: a training step, loadStateDict, an optimizer "
                           "update, to(), addModule); quantize it again");
  }
}

Int8Model::~Int8Model() = default;

int64_t Int8Model::observed() const { return plan_->observed; }
bool Int8Model::frozen() const { return plan_->frozen; }

void Int8Model::observe(const at::Tensor& images) {
  if (plan_->frozen) throw std::logic_error("Int8Model: already quantized; calibration is over");
  checkSource("during calibration");
  if (images.dim() != 4 || images.size(1) != 3 || images.scalar_type() != at::kFloat || !images.device().is_cpu() ||
      images.numel() == 0) {
    throw std::invalid_argument(
        "quantizeInt8: calibration images must be normalised float32 [N, 3, H, W] on the CPU, got " +
        describeTensor(images));
  }
  c10::InferenceMode inference;
  at::Tensor x = images.contiguous(at::MemoryFormat::ChannelsLast);
  plan_->inputRange.widen(x);
  for (auto& step : plan_->steps) {
    x = std::visit(
        [&](auto& s) -> at::Tensor {
          using S = std::decay_t<decltype(s)>;
          if constexpr (std::is_same_v<S, ConvStep>) {
            return s.conv.observe(x, s.relu);
          } else if constexpr (std::is_same_v<S, PoolStep>) {
            return s.pool->forward(x);
          } else {
            at::Tensor y = x;
            for (size_t c = 0; c + 1 < s.convs.size(); ++c) y = s.convs[c].observe(y, true);
            y = s.convs.back().observe(y, false);
            y.add_(s.downsample ? s.downsample->observe(x, false) : x).relu_();
            s.range.widen(y);
            return y;
          }
        },
        step);
  }
  ++plan_->observed;
}

void Int8Model::freeze() {
  if (plan_->frozen) return;
  if (plan_->observed == 0) throw std::logic_error("quantizeInt8: no calibration batch was observed");
  checkSource("during calibration");
  plan_->input = plan_->inputRange.params();
  forEachConv(plan_->steps, [](QConv& conv) { conv.freeze(); });
  for (auto& step : plan_->steps) {
    if (auto* block = std::get_if<BlockStep>(&step)) block->out = block->range.params();
  }
  // Only now, so that a freeze that failed half way can be tried again.
  forEachConv(plan_->steps, [](QConv& conv) { conv.dropFloat(); });
  plan_->frozen = true;
}

at::Tensor Int8Model::forward(const at::Tensor& input) {
  if (!plan_->frozen) throw std::logic_error("Int8Model: not quantized yet (observe calibration batches, then freeze)");
  checkSource("after it was quantized");
  if (input.dim() != 4 || input.size(1) != 3 || input.scalar_type() != at::kFloat || !input.device().is_cpu() ||
      input.numel() == 0) {
    throw std::invalid_argument("Int8Model: input must be normalised float32 images [N, 3, H, W] on the CPU, got " +
                                describeTensor(input));
  }
  at::Tensor q;
  {
    c10::InferenceMode inference;
    q = at::quantize_per_tensor(input.contiguous(at::MemoryFormat::ChannelsLast), plan_->input.scale,
                                plan_->input.zeroPoint, at::kQUInt8);
    for (const auto& step : plan_->steps) {
      q = std::visit(
          [&](const auto& s) -> at::Tensor {
            using S = std::decay_t<decltype(s)>;
            if constexpr (std::is_same_v<S, ConvStep>) {
              return s.conv.run(q, s.relu);
            } else if constexpr (std::is_same_v<S, PoolStep>) {
              return s.pool->forward(q);
            } else {
              at::Tensor y = q;
              for (size_t c = 0; c + 1 < s.convs.size(); ++c) y = s.convs[c].run(y, true);
              y = s.convs.back().run(y, false);
              return addRelu(y, s.downsample ? s.downsample->run(q, false) : q, s.out);
            }
          },
          step);
    }
  }
  // Outside inference mode: the float layers may record autograd (a forward with gradients).
  at::Tensor x = q.dequantize();
  for (const auto& m : plan_->tail) x = forwardModule(*m, x);
  return x;
}

std::string Int8Model::exportOnnx(OnnxGraph& g, const std::string& input, const std::string& path) const {
  if (!plan_->frozen) throw std::logic_error("Int8Model: not quantized yet (observe calibration batches, then freeze)");
  checkSource("after it was quantized");
  QParams in = plan_->input;
  std::string x = qdq(g, input, in);
  for (const auto& step : plan_->steps) {
    std::visit(
        [&](const auto& s) {
          using S = std::decay_t<decltype(s)>;
          if constexpr (std::is_same_v<S, ConvStep>) {
            x = s.conv.onnx(g, x, in, s.relu, path);
            in = s.conv.out;
          } else if constexpr (std::is_same_v<S, PoolStep>) {
            // The maximum of values on a grid is on that grid: quantized again at the same scale.
            x = qdq(g, exportModuleOnnx(*s.pool, g, x, path), in);
          } else {
            std::string y = x;
            QParams yIn = in;
            for (size_t c = 0; c + 1 < s.convs.size(); ++c) {
              y = s.convs[c].onnx(g, y, yIn, true, path);
              yIn = s.convs[c].out;
            }
            y = s.convs.back().onnx(g, y, yIn, false, path);
            std::string identity = s.downsample ? s.downsample->onnx(g, x, in, false, path) : x;
            x = qdq(g, g.add("Relu", {g.add("Add", {y, identity})}), s.out);
            in = s.out;
          }
        },
        step);
  }
  return exportChildrenOnnx(*this, g, x, path);
}

namespace {
std::string int8ModelOnnx(const torch::nn::Module& m, OnnxGraph& g, const std::string& input, const std::string& path) {
  return static_cast<const Int8Model&>(m).exportOnnx(g, input, path);
}
[[maybe_unused]] const bool registered =
    registerKind<Int8Model>({.name = "Int8Model", .ready = &checkCurrent, .onnx = int8ModelOnnx});

[[noreturn]] void refuseCopy() {
  throw std::logic_error(
      "Int8Model cannot be copied or moved off the CPU or float32: move or convert the float model, then quantize it "
      "again");
}
}  // namespace

std::shared_ptr<torch::nn::Module> Int8Model::clone(const std::optional<torch::Device>&) const { refuseCopy(); }

// Where it already is (the trainer and evaluate put a model on its device) is allowed.
void Int8Model::to(torch::Device device, torch::Dtype dtype, bool) {
  if (!device.is_cpu() || dtype != at::kFloat) refuseCopy();
}
void Int8Model::to(torch::Dtype dtype, bool) {
  if (dtype != at::kFloat) refuseCopy();
}
void Int8Model::to(torch::Device device, bool) {
  if (!device.is_cpu()) refuseCopy();
}

}  // namespace fcn
