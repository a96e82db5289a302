#pragma once

#include <napi.h>

namespace fcn {
/// nn.functional: cross entropy and the stateless ops the FCN uses.
void initFunctional(Napi::Env env, Napi::Object exports);
}  // namespace fcn
