// fcnSkip(stem, layer2, layer3, layer4, numClasses, outputStride): FCN-16s or FCN-8s
// (models/fcn_skip.h) over a ResNet body given as module handles.
#include "models/fcn_skip.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"

namespace fcn {

namespace {
Napi::Value fcnSkip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto stem = Module::unwrap(info[0], "stem");
  auto layer2 = Module::unwrap(info[1], "layer2");
  auto layer3 = Module::unwrap(info[2], "layer3");
  auto layer4 = Module::unwrap(info[3], "layer4");
  int64_t numClasses = toInt(info[4], "numClasses");
  int64_t stride = toInt(info[5], "outputStride");
  if (numClasses < 1) throw Napi::RangeError::New(env, "numClasses must be >= 1");
  return guard(env, [&] { return Module::wrap(env, makeFcnSkip(stride, stem, layer2, layer3, layer4, numClasses)); });
}
}  // namespace

void initFcnSkip(Napi::Env env, Napi::Object exports) { exports.Set("fcnSkip", Napi::Function::New<fcnSkip>(env)); }

}  // namespace fcn
