// predictLabels(model, images, tileH, tileW) -> Promise<int64 [N, H, W]>: the tiled
// prediction of models/predict.h on the torch thread.
#include "models/predict.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"

namespace fcn {

namespace {
Napi::Value predictLabelsAsync(const Napi::CallbackInfo& info) {
  auto model = Module::unwrap(info[0], "model");
  at::Tensor images = Tensor::unwrap(info[1], "images");
  int64_t tileH = toInt(info[2], "tileH"), tileW = toInt(info[3], "tileW");
  return runAsync(info.Env(), [model, images, tileH, tileW]() -> Settle {
    at::Tensor labels = predictLabels(*model, images, tileH, tileW);
    return [labels](Napi::Env env) { return Tensor::wrap(env, labels); };
  });
}
}  // namespace

void initPredict(Napi::Env env, Napi::Object exports) {
  exports.Set("predictLabels", Napi::Function::New<predictLabelsAsync>(env));
}

}  // namespace fcn
