// mobilenetV3Large(numClasses): torchvision's MobileNetV3-Large classifier
// (models/mobilenet_v3.h) as a module handle.
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "models/mobilenet_v3.h"

namespace fcn {

namespace {
Napi::Value mobilenetV3Large(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t numClasses = toInt(info[0], "numClasses");
  if (numClasses < 1) throw Napi::RangeError::New(env, "numClasses must be >= 1");
  return guard(env, [&] { return Module::wrap(env, std::make_shared<MobileNetV3>(numClasses)); });
}
}  // namespace

void initMobileNet(Napi::Env env, Napi::Object exports) {
  exports.Set("mobilenetV3Large", Napi::Function::New<mobilenetV3Large>(env));
}

}  // namespace fcn
