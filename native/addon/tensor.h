// The Tensor handle: a JS object owning one at::Tensor, with creation, data access and
// memory management (explicit dispose, GC finalizer, external-memory accounting).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <optional>

#include "core/tensor_data.h"

namespace fcn {

class Tensor : public Napi::ObjectWrap<Tensor> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  /// A new JS handle owning t.
  static Napi::Object wrap(Napi::Env env, at::Tensor t);
  /// The tensor behind a JS handle; a TypeError names `what` when v is not a live Tensor.
  static at::Tensor unwrap(const Napi::Value& v, const std::string& what);
  static bool isTensor(const Napi::Value& v);
  /// Named tensors as a JS array of [name, handle] pairs, and back (a TypeError names what).
  static Napi::Array wrapNamed(Napi::Env env, const NamedTensors& entries);
  static NamedTensors unwrapNamed(const Napi::Value& v, const std::string& what);
  /// A JS array of handles as tensors (a TypeError names what and the index otherwise).
  static std::vector<at::Tensor> unwrapList(const Napi::Value& v, const std::string& what);
  /// Handles created and not yet disposed or collected, in this process.
  static std::atomic<int64_t> live;

  explicit Tensor(const Napi::CallbackInfo& info);
  void Finalize(Napi::BasicEnv env) override;

 private:
  const at::Tensor& tensor(Napi::Env env) const;
  void release(Napi::BasicEnv env);

  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value requiresGrad(const Napi::CallbackInfo& info);
  void setRequiresGrad(const Napi::CallbackInfo& info, const Napi::Value& value);
  Napi::Value grad(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value toTypedArray(const Napi::CallbackInfo& info);
  Napi::Value item(const Napi::CallbackInfo& info);
  Napi::Value toString(const Napi::CallbackInfo& info);
  Napi::Value backward(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::optional<at::Tensor> tensor_;
  int64_t reportedBytes_ = 0;
};

}  // namespace fcn
