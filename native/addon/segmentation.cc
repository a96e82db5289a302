// segmentationModel(head, backbone, numClasses, aux): torchvision's segmentation models
// (models/segmentation_model.h) as module handles; src/models/segmentation.ts names them
// after torchvision's builders and loads their weights.
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "models/segmentation_model.h"

namespace fcn {

namespace {
Napi::Value segmentationModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SegmentationSpec spec;
  spec.head = toString(info[0], "head");
  spec.backbone = toString(info[1], "backbone");
  spec.numClasses = toInt(info[2], "numClasses");
  spec.aux = toBool(info[3], "aux");
  return guard(env, [&] { return Module::wrap(env, makeSegmentationModel(spec)); });
}
}  // namespace

void initSegmentation(Napi::Env env, Napi::Object exports) {
  exports.Set("segmentationModel", Napi::Function::New<segmentationModel>(env));
}

}  // namespace fcn
