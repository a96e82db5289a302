#pragma once

#include <napi.h>

namespace fcn {
/// loadWeights(path) and saveSafetensors(pairs, path, metadata), both async.
void initSerialization(Napi::Env env, Napi::Object exports);
}  // namespace fcn
