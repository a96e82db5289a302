// resnet18(numClasses): torchvision's ResNet-18 (models/resnet.h) as a module handle.
#include "models/resnet.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"

namespace fcn {

namespace {
Napi::Value resnet18(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t numClasses = toInt(info[0], "numClasses");
  if (numClasses < 1) throw Napi::RangeError::New(env, "numClasses must be >= 1");
  return guard(env, [&] {
    return Module::wrap(env, std::make_shared<ResNet>(std::array<int64_t, 4>{2, 2, 2, 2}, numClasses));
  });
}
}  // namespace

void initResNet(Napi::Env env, Napi::Object exports) { exports.Set("resnet18", Napi::Function::New<resnet18>(env)); }

}  // namespace fcn
