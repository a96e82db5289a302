// Distributed data parallelism on PyTorch's c10d: a process group (rendezvous through a
// TCPStore, Gloo for CPU tensors, NCCL for CUDA tensors in CUDA builds) and the two things
// training asks of it: the same state on every rank, and gradients averaged across ranks in
// buckets. Every collective waits on the torch thread, never on the JS thread.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

namespace fcn {

/// A connected process group and the device its collectives run on.
struct Group {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0;
  int size = 1;
  c10::Device device{c10::kCPU};
  std::string backend;
  bool connected = false;  // read and written on the JS thread only
};

/// Averages the gradients of model's trainable parameters across the group in place:
/// buckets of up to 25 MiB (the last layers' first, as DDP fills them), all reduced at once
/// and then awaited. A parameter without a gradient counts as zeros, so every rank sends the
/// same buckets.
void averageGradients(Group& group, torch::nn::Module& model);

/// Copies root's parameters and/or buffers to every rank (one flat tensor per dtype).
void broadcastState(Group& group, torch::nn::Module& model, bool parameters, bool buffers, int root);

class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  /// The connected group of a NativeProcessGroup; throws a TypeError for anything else.
  static std::shared_ptr<Group> unwrap(const Napi::Value& v, const std::string& what);

  explicit ProcessGroup(const Napi::CallbackInfo& info);

 private:
  Napi::Value connect(const Napi::CallbackInfo& info);
  Napi::Value allReduce(const Napi::CallbackInfo& info);
  Napi::Value broadcast(const Napi::CallbackInfo& info);
  Napi::Value broadcastModule(const Napi::CallbackInfo& info);
  Napi::Value barrier(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);

  /// Filled by connect's job; shared with the jobs that use it.
  std::shared_ptr<Group> group_ = std::make_shared<Group>();
};

}  // namespace fcn
