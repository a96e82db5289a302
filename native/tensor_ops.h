#pragma once

#include <napi.h>

namespace fcn {
/// Tensor operations, exported as plain functions over NativeTensor handles.
void initTensorOps(Napi::Env env, Napi::Object exports);
}  // namespace fcn
