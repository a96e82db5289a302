// Bindings of the VOC data helpers: label colours (or indexed PNG data) to class ids, and
// batches of random crops.
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"
#include "core/voc_data.h"

namespace fcn {

namespace {

/// labelIndices(rgb uint8 [H, W, 3]) -> Promise<uint8 [H, W]>
Napi::Value labelIndices(const Napi::CallbackInfo& info) {
  at::Tensor rgb = Tensor::unwrap(info[0], "label");
  return runAsync(info.Env(), [rgb]() -> Settle {
    at::Tensor ids = voc::labelIndices(rgb);
    return [ids](Napi::Env env) { return Tensor::wrap(env, ids); };
  });
}

/// paletteLabelIndices(scanlines uint8 [N], height, width, palette uint8 [P, 3])
///   -> Promise<uint8 [H, W]>
Napi::Value paletteLabelIndices(const Napi::CallbackInfo& info) {
  at::Tensor scanlines = Tensor::unwrap(info[0], "scanlines");
  int64_t height = toInt(info[1], "height"), width = toInt(info[2], "width");
  at::Tensor palette = Tensor::unwrap(info[3], "palette");
  return runAsync(info.Env(), [=]() -> Settle {
    at::Tensor ids = voc::paletteLabelIndices(scanlines, height, width, palette);
    return [ids](Napi::Env env) { return Tensor::wrap(env, ids); };
  });
}

/// cropBatch(images, labels, [top, left, flip, height, width, ...], cropH, cropW, mean, std, ignore)
///   -> Promise<[X, Y]> (height and width: the size each image is resized to first, 0 for its own)
Napi::Value cropBatch(const Napi::CallbackInfo& info) {
  auto images = Tensor::unwrapList(info[0], "images");
  auto labels = Tensor::unwrapList(info[1], "labels");
  auto windows = toIntList(info[2], "crops");
  if (windows.size() != 5 * images.size()) {
    throwType(info.Env(), "crops", "a top, left, flip, height and width per image", info[2]);
  }
  std::vector<voc::Crop> crops;
  for (size_t i = 0; i < images.size(); ++i) {
    const int64_t* w = windows.data() + 5 * i;
    crops.push_back({w[0], w[1], w[2] != 0, w[3], w[4]});
  }
  int64_t cropH = toInt(info[3], "cropH"), cropW = toInt(info[4], "cropW");
  auto mean = toDoubleTriple(info[5], "mean"), std = toDoubleTriple(info[6], "std");
  int64_t ignore = toInt(info[7], "ignore");
  return runAsync(info.Env(), [=]() -> Settle {
    auto [X, Y] = voc::cropBatch(images, labels, crops, cropH, cropW, mean, std, ignore);
    return [X, Y](Napi::Env env) -> Napi::Value {
      auto out = Napi::Array::New(env, 2);
      out.Set(0u, Tensor::wrap(env, X));
      out.Set(1u, Tensor::wrap(env, Y));
      return out;
    };
  });
}

}  // namespace

void initVoc(Napi::Env env, Napi::Object exports) {
  auto voc = Napi::Object::New(env);
  auto colormap = Napi::Array::New(env, voc::kColormap.size());
  for (size_t c = 0; c < voc::kColormap.size(); ++c) {
    auto colour = Napi::Array::New(env, 3);
    for (uint32_t k = 0; k < 3; ++k) colour.Set(k, voc::kColormap[c][k]);
    colormap.Set(static_cast<uint32_t>(c), colour);
  }
  voc.Set("colormap", colormap);
  auto voidColour = Napi::Array::New(env, 3);
  for (uint32_t k = 0; k < 3; ++k) voidColour.Set(k, voc::kVoidColour[k]);
  voc.Set("voidColour", voidColour);
  voc.Set("ignoreIndex", voc::kIgnore);
  voc.Set("labelIndices", Napi::Function::New<labelIndices>(env));
  voc.Set("paletteLabelIndices", Napi::Function::New<paletteLabelIndices>(env));
  voc.Set("cropBatch", Napi::Function::New<cropBatch>(env));
  exports.Set("voc", voc);
}

}  // namespace fcn
