// torch.nn.functional: the losses (PyTorch's cross-entropy; smp's Dice and Focal), over tensor handles.
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "train/losses.h"

namespace fcn {

namespace {

int64_t reductionOf(const std::string& name) {
  if (name == "mean") return at::Reduction::Mean;
  if (name == "sum") return at::Reduction::Sum;
  if (name == "none") return at::Reduction::None;
  throw std::invalid_argument("reduction must be 'mean', 'sum' or 'none', got '" + name + "'");
}

/// crossEntropy(input [N,C,...] float, target [N,...] int64, reduction, ignoreIndex,
/// labelSmoothing, weight?)
Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor input = Tensor::unwrap(info[0], "input");
  at::Tensor target = Tensor::unwrap(info[1], "target");
  std::string reduction = toString(info[2], "reduction");
  int64_t ignoreIndex = toInt(info[3], "ignoreIndex");
  double smoothing = toDouble(info[4], "labelSmoothing");
  std::optional<at::Tensor> weight;
  if (info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNull()) weight = Tensor::unwrap(info[5], "weight");
  return guard(env, [&] {
    if (!at::isFloatingType(input.scalar_type())) {
      throw std::invalid_argument(std::string("crossEntropy: input must be float32 or float64 logits, got ") +
                                  dtypeName(input.scalar_type()));
    }
    if (target.scalar_type() != at::kLong && !at::isFloatingType(target.scalar_type())) {
      throw std::invalid_argument(std::string("crossEntropy: target must be int64 class indices (or float "
                                              "probabilities), got ") +
                                  dtypeName(target.scalar_type()));
    }
    return Tensor::wrap(env,
                        at::cross_entropy_loss(input, target, weight, reductionOf(reduction), ignoreIndex, smoothing));
  });
}

/// diceLoss(input [B,C,H,W], target [B,H,W] int64, ignoreIndex)
Napi::Value diceLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor input = Tensor::unwrap(info[0], "input");
  at::Tensor target = Tensor::unwrap(info[1], "target");
  int64_t ignoreIndex = toInt(info[2], "ignoreIndex");
  return guard(env, [&] { return Tensor::wrap(env, fcn::diceLoss(input, target, ignoreIndex)); });
}

/// focalLoss(input [B,C,H,W], target [B,H,W] int64, ignoreIndex, gamma)
Napi::Value focalLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor input = Tensor::unwrap(info[0], "input");
  at::Tensor target = Tensor::unwrap(info[1], "target");
  int64_t ignoreIndex = toInt(info[2], "ignoreIndex");
  double gamma = toDouble(info[3], "gamma");
  return guard(env, [&] { return Tensor::wrap(env, fcn::focalLoss(input, target, ignoreIndex, gamma)); });
}

}  // namespace

void initFunctional(Napi::Env env, Napi::Object exports) {
  auto functional = Napi::Object::New(env);
  functional.Set("crossEntropy", Napi::Function::New<crossEntropy>(env));
  functional.Set("diceLoss", Napi::Function::New<diceLoss>(env));
  functional.Set("focalLoss", Napi::Function::New<focalLoss>(env));
  exports.Set("functional", functional);
}

}  // namespace fcn
