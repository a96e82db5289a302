// The training engine behind train(): one call per step (forward, the chapter's loss,
// backward, optimizer update) and per evaluation batch (loss and confusion matrix), run on
// the torch thread. A step takes one of three ways: on one device; data-parallel over
// several devices as nn.DataParallel does it in d2l's train_ch13 (the batch split, replicas
// refreshed from the model run their parts, their gradients summed onto the model); or as
// one rank of a process group as DDP does it (rank 0's buffers before the forward, the
// gradients averaged across the ranks before the update).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "distributed/process_group.h"

namespace fcn {

/// The chapter's loss: per-pixel cross-entropy (pixels labelled ignoreIndex count as 0),
/// averaged over each image's pixels: one value per image, [B].
struct ChapterLoss {
  int64_t ignoreIndex = 255;
  double labelSmoothing = 0;
  std::optional<at::Tensor> classWeights;
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& labels) const;
};

/// A model bound to its optimizer (null: evaluation only), devices, loss and process group.
struct TrainerState {
  std::shared_ptr<torch::nn::Module> model;
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  std::vector<c10::Device> devices;
  ChapterLoss loss;
  std::vector<std::shared_ptr<torch::nn::Module>> replicas;  // for devices[1..], made on first use
  std::shared_ptr<Group> group;                              // distributed training, or null
};

/// What a step did: the batch's summed per-image loss, correct and labelled pixels.
struct StepResult {
  double loss = 0;
  int64_t correct = 0, pixels = 0;
};

/// What evaluating a batch gave: the summed per-image loss and the confusion matrix
/// (int64 [C, C] on the CPU, rows the true class, ignored pixels left out).
struct EvalResult {
  double loss = 0;
  at::Tensor confusion;
};

/// Moves the model (and class weights) to devices[0]; checks that a distributed trainer
/// has one device of its group's kind.
void prepareTrainer(TrainerState& s);

/// One training step on images X [B, 3, H, W] and labels Y int64 [B, H, W].
StepResult trainStep(TrainerState& s, const at::Tensor& X, const at::Tensor& Y);

/// The loss and confusion matrix of a batch, in eval mode on devices[0].
EvalResult evaluateBatch(TrainerState& s, const at::Tensor& X, const at::Tensor& Y);

}  // namespace fcn
