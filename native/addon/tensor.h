// The Tensor handle: a JS object owning one at::Tensor, with creation, data access and
// memory management (explicit dispose, GC finalizer, external-memory accounting, and the
// early release of handles the garbage collector has found unreachable).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <optional>
#include <unordered_set>

#include "core/tensor_data.h"

namespace fcn {

class Tensor;

/**
 * The tensor handles of one JS environment. Node-API runs finalizers on a later event-loop
 * turn, so in a synchronous loop (`for (...) net.forward(x)`) every unreachable result would
 * keep its memory until the loop ends. The garbage collector does clear the handles' weak
 * references at once: every 32 MB of new tensors, the handles whose objects are gone give
 * their tensors back (the finalizer later finds nothing left to free).
 */
class TensorRegistry {
 public:
  void add(Tensor* t, int64_t bytes, Napi::Env env);
  void remove(Tensor* t) { tensors_.erase(t); }

 private:
  void sweep(Napi::Env env);
  std::unordered_set<Tensor*> tensors_;
  int64_t bytesSinceSweep_ = 0;
};

class Tensor : public Napi::ObjectWrap<Tensor> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  /// A new JS handle owning t. heldBytes, when larger than t's own, is the memory t keeps
  /// alive (its autograd graph's saved tensors): the JS engine is told that much, so that
  /// it collects unreachable results as soon as they matter.
  static Napi::Object wrap(Napi::Env env, at::Tensor t, int64_t heldBytes = 0);
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
  Napi::Value backward(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  /// What wrap hands the constructor.
  struct Made {
    at::Tensor tensor;
    int64_t heldBytes = 0;
  };

  friend class TensorRegistry;

  std::optional<at::Tensor> tensor_;
  int64_t reportedBytes_ = 0;
  std::shared_ptr<TensorRegistry> registry_;
};

}  // namespace fcn
