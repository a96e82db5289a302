#include "addon/js_interop.h"

#include <cmath>

#include "core/device.h"

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

std::array<double, 3> toDoubleTriple(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throwType(v.Env(), what, "three numbers", v);
  auto a = v.As<Napi::Array>();
  return {toDouble(a.Get(0u), what), toDouble(a.Get(1u), what), toDouble(a.Get(2u), what)};
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

Napi::Array fromStrings(Napi::Env env, const std::vector<std::string>& values) {
  auto out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), values[i]);
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

c10::Device toDevice(const Napi::Value& v) {
  if (!v.IsString()) throwType(v.Env(), "device", "'cpu', 'cuda' or 'cuda:N'", v);
  return guard(v.Env(), [&] { return parseDevice(v.As<Napi::String>().Utf8Value()); });
}

}  // namespace fcn
