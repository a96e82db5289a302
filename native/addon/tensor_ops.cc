// Tensor operations: the shape, reduction, arithmetic and indexing ops that the chapter and
// a training loop use. Each takes handles, validates, and returns a new handle.
#include <cmath>
#include <optional>

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "core/channel_argmax.h"

namespace fcn {

namespace {

at::Tensor arg(const Napi::CallbackInfo& info, size_t i, const char* what = "tensor") {
  return Tensor::unwrap(info[i], what);
}

template <typename Fn>
Napi::Value result(const Napi::CallbackInfo& info, Fn&& fn) {
  return guard(info.Env(), [&] { return Tensor::wrap(info.Env(), fn()); });
}

// --- shape ---
Napi::Value reshape(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto shape = toIntList(info[1], "shape");
  return result(info, [&] { return t.reshape(shape); });
}
Napi::Value permute(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto dims = toIntList(info[1], "dims");
  return result(info, [&] { return t.permute(dims); });
}
Napi::Value transpose(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto a = toInt(info[1], "dim0"), b = toInt(info[2], "dim1");
  return result(info, [&] { return t.transpose(a, b); });
}
Napi::Value unsqueeze(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto dim = toInt(info[1], "dim");
  return result(info, [&] { return t.unsqueeze(dim); });
}
Napi::Value squeeze(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  if (!given(info[1])) return result(info, [&] { return t.squeeze(); });
  auto dim = toInt(info[1], "dim");
  return result(info, [&] { return t.squeeze(dim); });
}
Napi::Value flatten(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto start = toInt(info[1], "startDim"), end = toInt(info[2], "endDim");
  return result(info, [&] { return t.flatten(start, end); });
}
Napi::Value narrow(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto dim = toInt(info[1], "dim"), start = toInt(info[2], "start"), length = toInt(info[3], "length");
  return result(info, [&] { return t.narrow(dim, start, length); });
}
Napi::Value slice(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto dim = toInt(info[1], "dim");
  std::optional<int64_t> start, end;
  if (given(info[2])) start = toInt(info[2], "start");
  if (given(info[3])) end = toInt(info[3], "end");
  auto step = given(info[4]) ? toInt(info[4], "step") : 1;
  if (step < 1) throw Napi::RangeError::New(info.Env(), "slice: step must be >= 1");
  return result(info, [&] { return t.slice(dim, start, end, step); });
}
Napi::Value cat(const Napi::CallbackInfo& info) {
  auto list = Tensor::unwrapList(info[0], "tensors");
  auto dim = toInt(info[1], "dim");
  return result(info, [&] { return at::cat(list, dim); });
}
Napi::Value stack(const Napi::CallbackInfo& info) {
  auto list = Tensor::unwrapList(info[0], "tensors");
  auto dim = toInt(info[1], "dim");
  return result(info, [&] { return at::stack(list, dim); });
}
/// index(t, [indexTensor | null, ...]): PyTorch's t[i0, i1, ...] with tensors and `:`.
Napi::Value index(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  if (!info[1].IsArray()) throwType(info.Env(), "indices", "an array of Tensors or nulls", info[1]);
  auto array = info[1].As<Napi::Array>();
  c10::List<std::optional<at::Tensor>> indices;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    if (given(v)) {
      indices.push_back(Tensor::unwrap(v, "indices[" + std::to_string(i) + "]"));
    } else {
      indices.push_back(std::nullopt);
    }
  }
  return result(info, [&] { return at::index(t, indices); });
}

// --- reductions ---
template <at::Tensor (*All)(const at::Tensor&), at::Tensor (*Dim)(const at::Tensor&, int64_t, bool)>
Napi::Value reduce(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  if (!given(info[1])) return result(info, [&] { return All(t); });
  auto dim = toInt(info[1], "dim");
  bool keepdim = given(info[2]) && toBool(info[2], "keepdim");
  return result(info, [&] { return Dim(t, dim, keepdim); });
}
at::Tensor sumAll(const at::Tensor& t) { return t.sum(); }
at::Tensor sumDim(const at::Tensor& t, int64_t d, bool k) { return t.sum(d, k); }
at::Tensor meanAll(const at::Tensor& t) { return t.mean(); }
at::Tensor meanDim(const at::Tensor& t, int64_t d, bool k) { return t.mean(d, k); }
at::Tensor argmaxAll(const at::Tensor& t) { return t.argmax(); }
at::Tensor argmaxDim(const at::Tensor& t, int64_t d, bool k) {
  // Over the channels of [N, C, H, W] scores (labels from logits): the cache-friendly kernel.
  if (t.dim() == 4 && (d == 1 || d == -3)) return k ? channelArgmax(t).unsqueeze(1) : channelArgmax(t);
  return t.argmax(d, k);
}
at::Tensor maxAll(const at::Tensor& t) { return t.max(); }
at::Tensor maxDim(const at::Tensor& t, int64_t d, bool k) { return std::get<0>(t.max(d, k)); }

// --- elementwise ---
/// The second operand of a binary op: a tensor, or a JS number kept as a Scalar so that
/// type promotion follows PyTorch (int tensor * 0.5 is float).
struct Operand {
  at::Tensor tensor;
  std::optional<at::Scalar> scalar;
};

template <at::Tensor (*Op)(const at::Tensor&, const Operand&)>
Napi::Value binary(const Napi::CallbackInfo& info) {
  auto a = arg(info, 0, "self");
  Operand b;
  if (info[1].IsNumber()) {
    // Integral numbers stay integral (int tensor + 1 is int), others are double.
    double v = info[1].As<Napi::Number>().DoubleValue();
    bool integral = std::trunc(v) == v && std::fabs(v) < 9007199254740992.0;
    b.scalar = integral ? at::Scalar(static_cast<int64_t>(v)) : at::Scalar(v);
  } else {
    b.tensor = arg(info, 1, "other");
  }
  return result(info, [&] { return Op(a, b); });
}
#define FCN_BINARY(name) \
  at::Tensor name(const at::Tensor& a, const Operand& b) { return b.scalar ? a.name(*b.scalar) : a.name(b.tensor); }
FCN_BINARY(add)
FCN_BINARY(sub)
FCN_BINARY(mul)
FCN_BINARY(div)
FCN_BINARY(pow)
FCN_BINARY(eq)
FCN_BINARY(ne)
FCN_BINARY(lt)
FCN_BINARY(gt)
FCN_BINARY(ge)
FCN_BINARY(le)
#undef FCN_BINARY
at::Tensor logicalOr(const at::Tensor& a, const Operand& b) {
  if (b.scalar) throw std::invalid_argument("logicalOr: other must be a Tensor, not a number");
  return a.logical_or(b.tensor);
}
at::Tensor matmul(const at::Tensor& a, const Operand& b) {
  if (b.scalar) throw std::invalid_argument("matmul: other must be a Tensor, not a number");
  return a.matmul(b.tensor);
}

template <at::Tensor (*Op)(const at::Tensor&)>
Napi::Value unary(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  return result(info, [&] { return Op(t); });
}
at::Tensor neg(const at::Tensor& t) { return t.neg(); }
at::Tensor abs(const at::Tensor& t) { return t.abs(); }
at::Tensor exp(const at::Tensor& t) { return t.exp(); }
at::Tensor log(const at::Tensor& t) { return t.log(); }
at::Tensor sqrt(const at::Tensor& t) { return t.sqrt(); }
at::Tensor relu(const at::Tensor& t) { return t.relu(); }
at::Tensor clone(const at::Tensor& t) { return t.clone(); }
at::Tensor detach(const at::Tensor& t) { return t.detach(); }
at::Tensor contiguous(const at::Tensor& t) { return t.contiguous(); }

Napi::Value softmax(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto dim = toInt(info[1], "dim");
  bool logarithm = given(info[2]) && toBool(info[2], "log");
  return result(info, [&] { return logarithm ? t.log_softmax(dim) : t.softmax(dim); });
}

/// maskedFill(t, mask, value): t with value where mask is true.
Napi::Value maskedFill(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  auto mask = arg(info, 1, "mask");
  double value = toDouble(info[2], "value");
  return result(info, [&] { return t.masked_fill(mask, value); });
}

/// to(t, {dtype?, device?}): a no-op returns the same storage, as in PyTorch.
Napi::Value to(const Napi::CallbackInfo& info) {
  auto t = arg(info, 0);
  if (!info[1].IsObject()) throwType(info.Env(), "options", "an object with dtype and/or device", info[1]);
  auto options = info[1].As<Napi::Object>();
  at::ScalarType dtype = t.scalar_type();
  c10::Device device = t.device();
  if (given(options.Get("dtype"))) dtype = toDtype(options.Get("dtype"));
  if (given(options.Get("device"))) device = toDevice(options.Get("device"));
  return result(info, [&] { return t.to(device, dtype); });
}

/// copy_(dst, src): in place; into a leaf that requires grad (a parameter) without
/// recording, as PyTorch's `weight.data.copy_(...)`.
Napi::Value copy_(const Napi::CallbackInfo& info) {
  auto dst = arg(info, 0, "self");
  auto src = arg(info, 1, "src");
  guard(info.Env(), [&] {
    if (dst.is_leaf() && dst.requires_grad()) {
      at::NoGradGuard noGrad;
      dst.copy_(src);
    } else {
      dst.copy_(src);
    }
  });
  return info[0];
}

}  // namespace

void initTensorOps(Napi::Env env, Napi::Object exports) {
  auto ops = Napi::Object::New(env);
  ops.Set("reshape", Napi::Function::New<reshape>(env));
  ops.Set("permute", Napi::Function::New<permute>(env));
  ops.Set("transpose", Napi::Function::New<transpose>(env));
  ops.Set("unsqueeze", Napi::Function::New<unsqueeze>(env));
  ops.Set("squeeze", Napi::Function::New<squeeze>(env));
  ops.Set("flatten", Napi::Function::New<flatten>(env));
  ops.Set("narrow", Napi::Function::New<narrow>(env));
  ops.Set("slice", Napi::Function::New<slice>(env));
  ops.Set("cat", Napi::Function::New<cat>(env));
  ops.Set("stack", Napi::Function::New<stack>(env));
  ops.Set("index", Napi::Function::New<index>(env));
  ops.Set("sum", Napi::Function::New<reduce<sumAll, sumDim>>(env));
  ops.Set("mean", Napi::Function::New<reduce<meanAll, meanDim>>(env));
  ops.Set("argmax", Napi::Function::New<reduce<argmaxAll, argmaxDim>>(env));
  ops.Set("max", Napi::Function::New<reduce<maxAll, maxDim>>(env));
  ops.Set("add", Napi::Function::New<binary<add>>(env));
  ops.Set("sub", Napi::Function::New<binary<sub>>(env));
  ops.Set("mul", Napi::Function::New<binary<mul>>(env));
  ops.Set("div", Napi::Function::New<binary<div>>(env));
  ops.Set("pow", Napi::Function::New<binary<pow>>(env));
  ops.Set("eq", Napi::Function::New<binary<eq>>(env));
  ops.Set("ne", Napi::Function::New<binary<ne>>(env));
  ops.Set("lt", Napi::Function::New<binary<lt>>(env));
  ops.Set("gt", Napi::Function::New<binary<gt>>(env));
  ops.Set("ge", Napi::Function::New<binary<ge>>(env));
  ops.Set("le", Napi::Function::New<binary<le>>(env));
  ops.Set("logicalOr", Napi::Function::New<binary<logicalOr>>(env));
  ops.Set("maskedFill", Napi::Function::New<maskedFill>(env));
  ops.Set("matmul", Napi::Function::New<binary<matmul>>(env));
  ops.Set("neg", Napi::Function::New<unary<neg>>(env));
  ops.Set("abs", Napi::Function::New<unary<abs>>(env));
  ops.Set("exp", Napi::Function::New<unary<exp>>(env));
  ops.Set("log", Napi::Function::New<unary<log>>(env));
  ops.Set("sqrt", Napi::Function::New<unary<sqrt>>(env));
  ops.Set("relu", Napi::Function::New<unary<relu>>(env));
  ops.Set("clone", Napi::Function::New<unary<clone>>(env));
  ops.Set("detach", Napi::Function::New<unary<detach>>(env));
  ops.Set("contiguous", Napi::Function::New<unary<contiguous>>(env));
  ops.Set("softmax", Napi::Function::New<softmax>(env));
  ops.Set("to", Napi::Function::New<to>(env));
  ops.Set("copy_", Napi::Function::New<copy_>(env));
  exports.Set("ops", ops);
}

}  // namespace fcn
