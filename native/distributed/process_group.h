// Distributed data parallelism on PyTorch's c10d: a process group (rendezvous through a
// TCPStore, Gloo for CPU tensors, NCCL for CUDA tensors in CUDA builds) and the two things
// training asks of it: the same state on every rank, and gradients averaged across ranks in
// buckets (distributed/reducer.h). Every collective waits on the torch thread, never on the JS thread.
#pragma once

#include <torch/torch.h>

#include <chrono>
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
  bool connected = false;  // set once connectGroup succeeded; read and written on the JS thread only
};

/// What connectGroup needs: this process's place in the group and where to meet.
struct ConnectOptions {
  int rank = 0, size = 1, port = 0;
  bool hostsStore = false;  // rank 0 hosts the TCPStore unless a launcher's agent does
  std::string masterAddr, hostname, interface, backend;
  std::chrono::milliseconds timeout{0};
  c10::Device device{c10::kCPU};
};

/// The rendezvous through a TCPStore, then the backend's connections to every peer;
/// errors say which step failed and what to check.
void connectGroup(Group& group, const ConnectOptions& options);

/// Waits for work; a failure names what failed and says that it is likely a peer's.
void waitFor(const c10::intrusive_ptr<c10d::Work>& work, const char* what);

/// Copies root's parameters and/or buffers to every rank (one flat tensor per dtype).
void broadcastState(Group& group, torch::nn::Module& model, bool parameters, bool buffers, int root);

/// Checks an all-reduce op name ('sum', 'avg', 'max', 'min', 'product'); throws otherwise.
void checkReduceOp(const std::string& op);

/// tensor (on the group's device) becomes the reduction of every rank's, in place.
void allReduce(Group& group, const at::Tensor& tensor, const std::string& op);

/// root's tensor is copied into every rank's.
void broadcast(Group& group, const at::Tensor& tensor, int root);

/// Returns once every rank has called it.
void barrier(Group& group);

/// Drops the connections (what destroy_process_group does); a group whose peers are gone
/// is dropped without a clean shutdown.
void shutdown(Group& group);

}  // namespace fcn
