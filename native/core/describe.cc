#include "core/describe.h"

#include <c10/util/Exception.h>

namespace fcn {

const char* dtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    default: return "unsupported";
  }
}

std::string shapeString(at::IntArrayRef sizes) { return "[" + c10::Join(", ", sizes) + "]"; }

std::string describeTensor(const at::Tensor& t) {
  return std::string(dtypeName(t.scalar_type())) + " " + shapeString(t);
}

std::string messageOf(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

}  // namespace fcn
