#pragma once

#include <napi.h>

namespace fcn {
/// createModule(kind, options): the built-in layers (Conv2d, ConvTranspose2d, BatchNorm2d,
/// ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear) and Sequential.
void initLayers(Napi::Env env, Napi::Object exports);
}  // namespace fcn
