// Making tensors: from TypedArrays, factories (zeros, rand, ...), and the global state that
// shapes creation (the random seed, grad mode, thread count).
#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"
#include "core/device.h"
#include "core/tensor_data.h"

namespace fcn {

namespace {

at::TensorOptions optionsFrom(const Napi::Value& v, at::ScalarType defaultType) {
  at::TensorOptions options = at::TensorOptions().dtype(defaultType);
  if (v.IsUndefined() || v.IsNull()) return options;
  if (!v.IsObject()) throwType(v.Env(), "options", "an object", v);
  auto obj = v.As<Napi::Object>();
  if (obj.Has("dtype") && !obj.Get("dtype").IsUndefined()) options = options.dtype(toDtype(obj.Get("dtype")));
  if (obj.Has("device") && !obj.Get("device").IsUndefined()) options = options.device(toDevice(obj.Get("device")));
  if (obj.Has("requiresGrad") && !obj.Get("requiresGrad").IsUndefined()) {
    options = options.requires_grad(toBool(obj.Get("requiresGrad"), "requiresGrad"));
  }
  return options;
}

at::ScalarType dtypeOfTypedArray(const Napi::TypedArray& array) {
  switch (array.TypedArrayType()) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_bigint64_array: return at::kLong;
    case napi_int32_array: return at::kInt;
    case napi_uint8_array: return at::kByte;
    default:
      throw Napi::TypeError::New(array.Env(),
                                 "data: expected a Float32Array, Float64Array, BigInt64Array, Int32Array or "
                                 "Uint8Array");
  }
}

/// fromTypedArray(array, shape, options?): copies the array; a dtype in options converts.
Napi::Value fromTypedArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throwType(env, "data", "a TypedArray", info[0]);
  auto array = info[0].As<Napi::TypedArray>();
  std::vector<int64_t> shape = toIntList(info[1], "shape");
  at::ScalarType source = dtypeOfTypedArray(array);
  at::TensorOptions options = optionsFrom(info[2], source);
  // napi_get_typedarray_info gives the bytes of ArrayBuffer and SharedArrayBuffer views alike.
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, array, &type, &length, &data, nullptr, nullptr),
                       Napi::Value());
  const auto* bytes = static_cast<const uint8_t*>(data);
  return guard(env, [&] {
    at::Tensor t = tensorFromBytes(bytes, array.ByteLength(), source, shape);
    if (options.dtype().toScalarType() != source || options.device() != t.device()) {
      t = t.to(options.device(), options.dtype().toScalarType());
    }
    if (options.requires_grad()) t.set_requires_grad(true);
    return Tensor::wrap(env, t);
  });
}

template <at::Tensor (*Factory)(at::IntArrayRef, at::TensorOptions)>
Napi::Value sized(const Napi::CallbackInfo& info) {
  std::vector<int64_t> shape = toIntList(info[0], "shape");
  at::TensorOptions options = optionsFrom(info[1], at::kFloat);
  return guard(info.Env(), [&] {
    checkedNumel(shape);
    return Tensor::wrap(info.Env(), Factory(shape, options));
  });
}

at::Tensor zeros(at::IntArrayRef s, at::TensorOptions o) { return torch::zeros(s, o); }
at::Tensor ones(at::IntArrayRef s, at::TensorOptions o) { return torch::ones(s, o); }
at::Tensor rand(at::IntArrayRef s, at::TensorOptions o) { return torch::rand(s, o); }
at::Tensor randn(at::IntArrayRef s, at::TensorOptions o) { return torch::randn(s, o); }
at::Tensor empty(at::IntArrayRef s, at::TensorOptions o) { return torch::empty(s, o); }

/// full(shape, value, options?)
Napi::Value full(const Napi::CallbackInfo& info) {
  std::vector<int64_t> shape = toIntList(info[0], "shape");
  double value = toDouble(info[1], "value");
  at::TensorOptions options = optionsFrom(info[2], at::kFloat);
  return guard(info.Env(), [&] {
    checkedNumel(shape);
    return Tensor::wrap(info.Env(), torch::full(shape, value, options));
  });
}

/// arange(start, end, step, options?): int64 when all three are integers, as in PyTorch.
Napi::Value arange(const Napi::CallbackInfo& info) {
  double start = toDouble(info[0], "start");
  double end = toDouble(info[1], "end");
  double step = toDouble(info[2], "step");
  bool integral = std::trunc(start) == start && std::trunc(end) == end && std::trunc(step) == step;
  at::TensorOptions options = optionsFrom(info[3], integral ? at::kLong : at::kFloat);
  return guard(info.Env(), [&] {
    if (step == 0) throw std::invalid_argument("arange: step must not be 0");
    if (integral) {
      return Tensor::wrap(info.Env(), torch::arange(static_cast<int64_t>(start), static_cast<int64_t>(end),
                                                    static_cast<int64_t>(step), options));
    }
    return Tensor::wrap(info.Env(), torch::arange(start, end, step, options));
  });
}

Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  int64_t seed = toInt(info[0], "seed");
  guard(info.Env(), [&] { torch::manual_seed(static_cast<uint64_t>(seed)); });
  return info.Env().Undefined();
}

Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  at::GradMode::set_enabled(toBool(info[0], "enabled"));
  return info.Env().Undefined();
}

Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = toInt(info[0], "threads");
  if (n < 1 || n > 65536) throw Napi::RangeError::New(info.Env(), "threads: expected an integer in [1, 65536]");
  guard(info.Env(), [&] { setIntraOpThreads(static_cast<int>(n)); });
  return info.Env().Undefined();
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value liveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Tensor::live.load()));
}

Napi::Value cudaInfo(const Napi::CallbackInfo& info) {
  auto out = Napi::Object::New(info.Env());
  out.Set("built", cudaBuilt());
  out.Set("deviceCount", static_cast<double>(cudaDeviceCount()));
  return out;
}

/// cudaSynchronize(device) -> Promise<void>: settles once the GPU's queued work is done
/// (for timing; results read back to JS wait by themselves).
Napi::Value cudaSynchronize(const Napi::CallbackInfo& info) {
  c10::Device device = toDevice(info[0]);
  if (!device.is_cuda()) throw Napi::TypeError::New(info.Env(), "device: expected cuda or cuda:N");
  return runAsync(info.Env(), [device]() -> Settle {
    torch::cuda::synchronize(device.has_index() ? device.index() : -1);
    return settleUndefined();
  });
}

}  // namespace

void initTensorCreation(Napi::Env env, Napi::Object exports) {
  exports.Set("fromTypedArray", Napi::Function::New<fromTypedArray>(env));
  exports.Set("zeros", Napi::Function::New<sized<zeros>>(env));
  exports.Set("ones", Napi::Function::New<sized<ones>>(env));
  exports.Set("rand", Napi::Function::New<sized<rand>>(env));
  exports.Set("randn", Napi::Function::New<sized<randn>>(env));
  exports.Set("empty", Napi::Function::New<sized<empty>>(env));
  exports.Set("full", Napi::Function::New<full>(env));
  exports.Set("arange", Napi::Function::New<arange>(env));
  exports.Set("manualSeed", Napi::Function::New<manualSeed>(env));
  exports.Set("setGradEnabled", Napi::Function::New<setGradEnabled>(env));
  exports.Set("isGradEnabled", Napi::Function::New<isGradEnabled>(env));
  exports.Set("setNumThreads", Napi::Function::New<setNumThreads>(env));
  exports.Set("getNumThreads", Napi::Function::New<getNumThreads>(env));
  exports.Set("liveTensors", Napi::Function::New<liveTensors>(env));
  exports.Set("cudaInfo", Napi::Function::New<cudaInfo>(env));
  exports.Set("cudaSynchronize", Napi::Function::New<cudaSynchronize>(env));
}

}  // namespace fcn
