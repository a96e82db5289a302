// The gradients of a data-parallel step averaged across the ranks as DDP's reducer does it:
// in buckets of up to 25 MiB (the last layers' first), each bucket's all-reduce started as
// soon as the backward has accumulated every gradient in it (a post-accumulate-grad hook on
// each parameter), so that the communication runs while the backward computes the earlier
// layers. Buckets start in one order on every rank, whatever order the hooks fire in.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "distributed/process_group.h"

namespace fcn {

class GradientReducer {
 public:
  /// Buckets over model's trainable parameters and hooks on them; the hooks stay idle but
  /// during an armed backward.
  GradientReducer(std::shared_ptr<Group> group, torch::nn::Module& model);
  /// Takes its hooks off the parameters.
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// The next backward's gradients are all-reduced as they become ready.
  void arm();
  /// After the backward (armed or not): starts the buckets the backward did not fill (a
  /// parameter without a gradient here counts as zeros), waits for every bucket, and writes the
  /// averages into the gradients; a parameter no rank gave a gradient keeps none (the optimizer
  /// skips it), as in DDP. Returns the seconds it waited for the all-reduces: the part of the
  /// communication the backward did not hide.
  double finish();

  /// From a parameter's hook: its gradient is final for this backward.
  void ready(size_t param);

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    at::Tensor flat;             // their gradients one after the other, then the average
    size_t readyCount = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  /// Starts the buckets whose gradients are all ready, in order, from the next one not started.
  void startReady();
  /// No bucket started, no gradient ready.
  void reset();
  void start(Bucket& bucket);

  std::shared_ptr<Group> group_;
  std::vector<at::Tensor> params_;
  std::vector<size_t> bucketOf_;
  std::vector<Bucket> buckets_;
  std::vector<char> ready_;
  size_t started_ = 0;  // buckets started this backward
  bool armed_ = false;
  std::mutex mutex_;  // hooks of a CUDA backward fire on the autograd engine's device threads
};

}  // namespace fcn
