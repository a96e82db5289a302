#pragma once

#include <napi.h>

namespace fcn {
/// voc.labelIndices(rgb) and voc.cropBatch(...), both async on the torch thread.
void initVoc(Napi::Env env, Napi::Object exports);
}  // namespace fcn
