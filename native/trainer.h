// The training engine behind train(): one native call per step (forward, the chapter's
// loss, backward, SGD update) and per evaluation batch (loss and confusion matrix), run on
// the torch thread. With several devices a step is data-parallel as nn.DataParallel does it
// in d2l's train_ch13: the batch is split, replicas refreshed from the model run their
// parts, and their gradients are summed onto the model before the update. With a process
// group a step is distributed-data-parallel as DDP does it: buffers from rank 0 before the
// forward, gradients averaged across the ranks before the update.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "process_group.h"

namespace fcn {

/// The chapter's loss: per-pixel cross-entropy (pixels labelled ignoreIndex count as 0),
/// averaged over each image's pixels: one value per image, [B].
struct ChapterLoss {
  int64_t ignoreIndex = 255;
  double labelSmoothing = 0;
  std::optional<at::Tensor> classWeights;
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& labels) const;
};

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Trainer(const Napi::CallbackInfo& info);

  /// Everything a step needs, shared with the jobs on the torch thread.
  struct State {
    std::shared_ptr<torch::nn::Module> model;
    std::shared_ptr<torch::optim::Optimizer> optimizer;
    std::vector<c10::Device> devices;
    ChapterLoss loss;
    std::vector<std::shared_ptr<torch::nn::Module>> replicas;  // for devices[1..]
    std::shared_ptr<Group> group;                              // distributed training, or null
  };

 private:
  Napi::Value step(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);

  std::shared_ptr<State> state_;
};

}  // namespace fcn
