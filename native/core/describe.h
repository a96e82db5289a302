// How errors name tensors, dtypes and exceptions, in one place: every message that shows a
// shape or a dtype spells it the way the TypeScript API does ("float32 [1, 3, 320, 480]").
#pragma once

#include <ATen/ATen.h>

#include <exception>
#include <string>

namespace fcn {

/// 'float32' and friends, as the TypeScript API spells them.
const char* dtypeName(at::ScalarType type);

/// "[1, 3, 320, 480]".
std::string shapeString(at::IntArrayRef sizes);
inline std::string shapeString(const at::Tensor& t) { return shapeString(t.sizes()); }

/// "float32 [1, 3, 320, 480]".
std::string describeTensor(const at::Tensor& t);

/// The message of an exception, without libtorch's C++ backtrace.
std::string messageOf(const std::exception& e);

}  // namespace fcn
