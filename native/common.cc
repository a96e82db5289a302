#include "common.h"

#include <ATen/detail/CUDAHooksInterface.h>

#include <cmath>

namespace fcn {

namespace {
std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsString()) return "'" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsNumber()) return std::to_string(v.As<Napi::Number>().DoubleValue());
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  return "an object";
}
}  // namespace

void throwType(Napi::Env env, const std::string& what, const std::string& expected, const Napi::Value& given) {
  throw Napi::TypeError::New(env, what + ": expected " + expected + ", got " + describe(given));
}

int64_t toInt(const Napi::Value& v, const std::string& what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t out = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throwType(v.Env(), what, "an integer that fits in int64", v);
    return out;
  }
  if (!v.IsNumber()) throwType(v.Env(), what, "an integer", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9007199254740991.0) {
    throwType(v.Env(), what, "an integer", v);
  }
  return static_cast<int64_t>(d);
}

double toDouble(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throwType(v.Env(), what, "a number", v);
  return v.As<Napi::Number>().DoubleValue();
}

bool toBool(const Napi::Value& v, const std::string& what) {
  if (!v.IsBoolean()) throwType(v.Env(), what, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string toString(const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) throwType(v.Env(), what, "a string", v);
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> toIntList(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throwType(v.Env(), what, "an array of integers", v);
  auto array = v.As<Napi::Array>();
  std::vector<int64_t> out(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    out[i] = toInt(array.Get(i), what + "[" + std::to_string(i) + "]");
  }
  return out;
}

Napi::Array fromIntList(Napi::Env env, c10::IntArrayRef values) {
  auto out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(values[i])));
  }
  return out;
}

at::ScalarType toDtype(const Napi::Value& v) {
  std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  throwType(v.Env(), "dtype", "one of float32, float64, int64, int32, uint8, bool", v);
}

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

bool cudaBuilt() { return at::detail::getCUDAHooks().isBuilt(); }

c10::Device parseDevice(const std::string& spec) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  bool isCuda = spec == "cuda" || spec.rfind("cuda:", 0) == 0;
  if (!isCuda) {
    throw std::invalid_argument("unknown device '" + spec + "': expected 'cpu', 'cuda' or 'cuda:N'");
  }
  int64_t index = 0;
  if (spec.size() > 5) {
    std::string digits = spec.substr(5);
    if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) {
      throw std::invalid_argument("unknown device '" + spec + "': expected 'cpu', 'cuda' or 'cuda:N'");
    }
    index = std::stoll(digits);
  }
  if (!cudaBuilt()) {
    throw std::runtime_error(
        "device '" + spec +
        "' asked for, but this build of fcn-torch has no CUDA support (it was built "
        "against a CPU-only libtorch); build the CUDA variant with scripts/build-cuda.sh, see the README");
  }
  int64_t count = at::hasCUDA() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (index >= count) {
    throw std::runtime_error(
        "device '" + spec + "' asked for, but only " + std::to_string(count) +
        " CUDA device(s) are visible (this is a CUDA build; check the GPU driver and CUDA_VISIBLE_DEVICES)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::Device toDevice(const Napi::Value& v) {
  if (!v.IsString()) throwType(v.Env(), "device", "'cpu', 'cuda' or 'cuda:N'", v);
  return guard(v.Env(), [&] { return parseDevice(v.As<Napi::String>().Utf8Value()); });
}

}  // namespace fcn
