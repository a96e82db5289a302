#include "addon/tensor.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/torch_thread.h"

namespace fcn {

std::atomic<int64_t> Tensor::live{0};

void initTensorClass(Napi::Env env, Napi::Object exports) {
  addonData(env).tensors = std::make_shared<TensorRegistry>();
  Tensor::Init(env, exports);
}

void TensorRegistry::add(Tensor* t, int64_t bytes, Napi::Env env) {
  constexpr int64_t kSweepEvery = int64_t{32} << 20;
  tensors_.insert(t);
  bytesSinceSweep_ += bytes;
  if (bytesSinceSweep_ > kSweepEvery) sweep(env);
}

void TensorRegistry::sweep(Napi::Env env) {
  bytesSinceSweep_ = 0;
  for (auto it = tensors_.begin(); it != tensors_.end();) {
    Tensor* t = *it++;
    // A weak reference whose object the garbage collector took reads as empty.
    if (t->Value().IsEmpty()) t->release(env);
  }
}

void Tensor::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls =
      DefineClass(env, "NativeTensor",
                  {
                      InstanceAccessor<&Tensor::shape>("shape"),
                      InstanceAccessor<&Tensor::dtype>("dtype"),
                      InstanceAccessor<&Tensor::device>("device"),
                      InstanceAccessor<&Tensor::requiresGrad, &Tensor::setRequiresGrad>("requiresGrad"),
                      InstanceAccessor<&Tensor::grad>("grad"),
                      InstanceAccessor<&Tensor::disposed>("disposed"),
                      InstanceMethod<&Tensor::toTypedArray>("toTypedArray"),
                      InstanceMethod<&Tensor::item>("item"),
                      InstanceMethod<&Tensor::backward>("backward"),
                      InstanceMethod<&Tensor::dispose>("dispose"),
                  });
  addonData(env).tensorClass = Napi::Persistent(cls);
  exports.Set("NativeTensor", cls);
}

Tensor::Tensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tensor>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeTensor is made by fcn-torch functions, not with new");
  }
  auto* made = info[0].As<Napi::External<Made>>().Data();
  tensor_ = std::move(made->tensor);
  if (tensor_->defined() && tensor_->device().is_cpu()) {
    reportedBytes_ = std::max(static_cast<int64_t>(tensor_->nbytes()), made->heldBytes);
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
  }
  ++live;
  registry_ = addonData(info.Env()).tensors;
  registry_->add(this, reportedBytes_, info.Env());
}

Napi::Object Tensor::wrap(Napi::Env env, at::Tensor t, int64_t heldBytes) {
  Made made{std::move(t), heldBytes};
  return addonData(env).tensorClass.New({Napi::External<Made>::New(env, &made)});
}

bool Tensor::isTensor(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(v.Env()).tensorClass.Value());
}

at::Tensor Tensor::unwrap(const Napi::Value& v, const std::string& what) {
  if (!isTensor(v)) throwType(v.Env(), what, "a Tensor", v);
  return Unwrap(v.As<Napi::Object>())->tensor(v.Env());
}

Napi::Array Tensor::wrapNamed(Napi::Env env, const NamedTensors& entries) {
  auto out = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto pair = Napi::Array::New(env, 2);
    pair.Set(0u, entries[i].first);
    pair.Set(1u, wrap(env, entries[i].second));
    out.Set(static_cast<uint32_t>(i), pair);
  }
  return out;
}

NamedTensors Tensor::unwrapNamed(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) throwType(env, what, "an array of [name, Tensor] pairs", v);
  auto pairs = v.As<Napi::Array>();
  NamedTensors out;
  for (uint32_t i = 0; i < pairs.Length(); ++i) {
    Napi::Value pair = pairs.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) {
      throwType(env, what + "[" + std::to_string(i) + "]", "a [name, Tensor] pair", pair);
    }
    std::string name = fcn::toString(pair.As<Napi::Array>().Get(0u), what + " key");
    out.emplace_back(name, unwrap(pair.As<Napi::Array>().Get(1u), what + " entry '" + name + "'"));
  }
  return out;
}

std::vector<at::Tensor> Tensor::unwrapList(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throwType(v.Env(), what, "an array of Tensors", v);
  auto array = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < array.Length(); ++i)
    out.push_back(unwrap(array.Get(i), what + "[" + std::to_string(i) + "]"));
  return out;
}

const at::Tensor& Tensor::tensor(Napi::Env env) const {
  if (!tensor_) throw Napi::Error::New(env, "this tensor was disposed and can no longer be used");
  return *tensor_;
}

void Tensor::release(Napi::BasicEnv env) {
  if (!tensor_) return;
  if (registry_) registry_->remove(this);
  tensor_.reset();
  if (reportedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reportedBytes_);
  reportedBytes_ = 0;
  --live;
}

void Tensor::Finalize(Napi::BasicEnv env) { release(env); }

Napi::Value Tensor::dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value Tensor::disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.has_value());
}

Napi::Value Tensor::shape(const Napi::CallbackInfo& info) {
  return fromIntList(info.Env(), tensor(info.Env()).sizes());
}

Napi::Value Tensor::dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(tensor(info.Env()).scalar_type()));
}

Napi::Value Tensor::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensor(info.Env()).device().str());
}

Napi::Value Tensor::requiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensor(info.Env()).requires_grad());
}

void Tensor::setRequiresGrad(const Napi::CallbackInfo& info, const Napi::Value& value) {
  bool flag = toBool(value, "requiresGrad");
  guard(info.Env(), [&] { tensor(info.Env()).set_requires_grad(flag); });
}

Napi::Value Tensor::grad(const Napi::CallbackInfo& info) {
  // A parameter's grad is written by training steps on the torch thread.
  at::Tensor g = withModelLock(info.Env(), [&] { return tensor(info.Env()).grad(); });
  if (!g.defined()) return info.Env().Null();
  return wrap(info.Env(), g);
}

Napi::Value Tensor::toTypedArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensor(env);
  napi_typedarray_type kind;
  switch (t.scalar_type()) {
    case at::kFloat: kind = napi_float32_array; break;
    case at::kDouble: kind = napi_float64_array; break;
    case at::kLong: kind = napi_bigint64_array; break;
    case at::kInt: kind = napi_int32_array; break;
    case at::kByte:
    case at::kBool: kind = napi_uint8_array; break;
    default:
      throw Napi::TypeError::New(env, std::string("toTypedArray: no TypedArray holds dtype ") +
                                          dtypeName(t.scalar_type()) + "; convert it with .to() first");
  }
  auto buffer = Napi::ArrayBuffer::New(env, t.nbytes());
  guard(env, [&] { copyTensorBytes(t, buffer.Data(), buffer.ByteLength()); });
  size_t length = static_cast<size_t>(t.numel());
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, kind, length, buffer, 0, &out), Napi::Value());
  return Napi::Value(env, out);
}

Napi::Value Tensor::item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensor(env);
  if (t.numel() != 1) {
    throw Napi::Error::New(env,
                           "item() needs a tensor with exactly one element, this one has " + std::to_string(t.numel()));
  }
  return guard(env, [&]() -> Napi::Value {
    at::Scalar s = t.item();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    return Napi::Number::New(env, s.toDouble());
  });
}

Napi::Value Tensor::backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensor(env);
  at::Tensor gradient;
  if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) gradient = unwrap(info[0], "gradient");
  guard(env, [&] { t.backward(gradient); });
  return env.Undefined();
}

}  // namespace fcn
