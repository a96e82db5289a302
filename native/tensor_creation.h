#pragma once

#include <napi.h>

namespace fcn {
void initTensorCreation(Napi::Env env, Napi::Object exports);
}
