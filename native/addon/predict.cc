// predictLabels(model, images, tileH, tileW, mean, std, fused, precision) -> Promise<int64
// [N, H, W]>: the tiled prediction of models/predict.h on the torch thread (uint8 pixels
// normalised there); predictResized(model, images, resizeSize, mean, std, fused, precision)
// the whole-image one of torchvision's segmentation models. fused: BatchNorm folded into the
// convolutions (models/fused_conv.h) for this call; precision: 'float32' or 'bfloat16' for
// this call (core/autocast.h's Override), or null for the process-wide autocast setting.
#include "models/predict.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"
#include "core/autocast.h"
#include "models/fused_conv.h"

namespace fcn {

namespace {
/// null: the process-wide setting; 'float32' or 'bfloat16': this call's.
std::optional<std::optional<at::ScalarType>> precisionOf(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  std::string name = toString(v, "precision");
  // Built in place: GCC 12 takes a converted empty optional for an uninitialized one.
  if (name == "float32") return std::optional<std::optional<at::ScalarType>>(std::in_place, std::nullopt);
  if (name == "bfloat16") return std::optional<std::optional<at::ScalarType>>(std::in_place, at::kBFloat16);
  throwType(v.Env(), "precision", "'float32' or 'bfloat16'", v);
}

/// The job's precision: an Override while alive when one was given.
struct PrecisionScope {
  explicit PrecisionScope(const std::optional<std::optional<at::ScalarType>>& precision) {
    if (precision) override.emplace(*precision);
  }
  std::optional<autocast::Override> override;
};

Napi::Value predictLabelsAsync(const Napi::CallbackInfo& info) {
  auto model = Module::unwrap(info[0], "model");
  at::Tensor images = Tensor::unwrap(info[1], "images");
  int64_t tileH = toInt(info[2], "tileH"), tileW = toInt(info[3], "tileW");
  Normalize normalize;
  normalize.mean = toDoubleTriple(info[4], "mean");
  normalize.std = toDoubleTriple(info[5], "std");
  bool fused = toBool(info[6], "fused");
  auto precision = precisionOf(info[7]);
  return runAsync(info.Env(), [model, images, tileH, tileW, normalize, fused, precision]() -> Settle {
    FusedInferenceScope scope(fused);
    PrecisionScope reduced(precision);
    at::Tensor labels = predictLabels(*model, images, tileH, tileW, normalize);
    return [labels](Napi::Env env) { return Tensor::wrap(env, labels); };
  });
}

Napi::Value predictResizedAsync(const Napi::CallbackInfo& info) {
  auto model = Module::unwrap(info[0], "model");
  at::Tensor images = Tensor::unwrap(info[1], "images");
  ResizeNormalize transforms;
  transforms.resizeSize = toInt(info[2], "resizeSize");
  transforms.mean = toDoubleTriple(info[3], "mean");
  transforms.std = toDoubleTriple(info[4], "std");
  bool fused = toBool(info[5], "fused");
  auto precision = precisionOf(info[6]);
  return runAsync(info.Env(), [model, images, transforms, fused, precision]() -> Settle {
    FusedInferenceScope scope(fused);
    PrecisionScope reduced(precision);
    at::Tensor labels = predictResized(*model, images, transforms);
    return [labels](Napi::Env env) { return Tensor::wrap(env, labels); };
  });
}
}  // namespace

void initPredict(Napi::Env env, Napi::Object exports) {
  exports.Set("predictLabels", Napi::Function::New<predictLabelsAsync>(env));
  exports.Set("predictResized", Napi::Function::New<predictResizedAsync>(env));
}

}  // namespace fcn
