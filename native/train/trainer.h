// The training engine behind train(): one call per step (forward, the loss, backward,
// optimizer update) and per evaluation batch (loss and confusion matrix), run on the torch
// thread. The loss is the chapter's (a per-image mean) or torchvision's reference recipe's
// (a mean over the batch's labelled pixels), with the auxiliary output's term when the model
// has one. A step takes one of three ways: on one device; data-parallel over
// several devices as nn.DataParallel does it in d2l's train_ch13 (the batch split, replicas
// refreshed from the model run their parts, their gradients summed onto the model); or as
// one rank of a process group as DDP does it (rank 0's buffers before the forward, the
// gradients averaged across the ranks before the update). Gradients may be accumulated over
// several batches before an update (PyTorch's no_sync pattern): a step that does not update
// adds its gradients to the pending ones and talks to no other rank.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "distributed/process_group.h"
#include "distributed/reducer.h"
#include "models/registry.h"

namespace fcn {

/// The smallest and largest label of a batch other than the ignore index (min > max: none).
/// Read once per batch, from the labels where they arrive (the CPU, as a loader gives them),
/// so that checking them against the model's classes stalls no GPU in the middle of a step.
struct LabelRange {
  int64_t min = 0, max = -1;
  static LabelRange of(const at::Tensor& labels, int64_t ignoreIndex);
};

/// The loss of a step. Chapter: per-pixel cross-entropy (pixels labelled ignoreIndex count
/// as 0) averaged over each image's pixels, summed over the images. Torchvision: PyTorch's
/// mean-reduced cross_entropy (over the labelled pixels, weighted by classWeights), as
/// torchvision's references/segmentation does. Weighted Dice and Focal terms (losses.h, batch
/// means; times the images under the chapter's sum) may join or replace the cross-entropy.
/// Either adds auxWeight times the same loss of the model's "aux" output when it has one.
struct SegmentationLoss {
  enum class Kind { Chapter, Torchvision };
  Kind kind = Kind::Chapter;
  int64_t ignoreIndex = 255;
  double labelSmoothing = 0;
  double auxWeight = 0.5;
  std::optional<at::Tensor> classWeights;
  double crossEntropyWeight = 1, diceWeight = 0, focalWeight = 0, focalGamma = 2;
  /// The denominator of the torchvision loss for labels: the labelled pixels (their class
  /// weights' sum with classWeights), at least 1 (a batch with no labelled pixel has loss 0,
  /// where PyTorch would give NaN).
  at::Tensor denominator(const at::Tensor& labels) const;
  /// The loss of a model's outputs for labels, the value to back-propagate: the chapter's
  /// sum over the images; torchvision's sum over the labelled pixels divided by denominator
  /// (that of the whole batch when labels are a part of it, whose share of the batch's
  /// images then weighs its Dice and Focal means). Throws std::invalid_argument for outputs
  /// that do not fit the labels or labels (their range) that are no class.
  at::Tensor operator()(const NamedOutputs& outputs, const at::Tensor& labels, const at::Tensor& denominator,
                        const LabelRange& range, double share = 1.0) const;
};

/// A model bound to its optimizer (null: evaluation only), devices, loss and process group.
struct TrainerState {
  std::shared_ptr<torch::nn::Module> model;
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  std::vector<c10::Device> devices;
  SegmentationLoss loss;
  std::vector<std::shared_ptr<torch::nn::Module>> replicas;  // for devices[1..], made on first use
  std::shared_ptr<Group> group;                              // distributed training, or null
  std::unique_ptr<GradientReducer> reducer;                  // with a group, made by prepareTrainer
  /// Batches whose gradients make one update: torchvision's mean loss of each counts 1/accumulate
  /// (the chapter's sum over the images sums as it is).
  int64_t accumulate = 1;
  int64_t pending = 0;       // batches whose gradients are summed but not applied yet
  double allReduceWait = 0;  // the last update's, from its reducer
};

/// What a step did: the batch's loss (chapter: the sum of the per-image losses;
/// torchvision: the mean loss times the images), correct and labelled pixels of "out".
struct StepResult {
  double loss = 0;
  int64_t correct = 0, pixels = 0;
  bool updated = false;  // the optimizer stepped (the last batch of an accumulation)
  /// Distributed: seconds the update waited for the gradients' all-reduce after the backward
  /// (what the backward did not hide of it).
  double allReduceWait = 0;
};

/// What evaluating a batch gave: the loss (as StepResult's) and the confusion matrix
/// (int64 [C, C] on the CPU, rows the true class, ignored pixels left out).
struct EvalResult {
  double loss = 0;
  at::Tensor confusion;
};

/// optimizer.step(), then each of its parameters' version bumped: libtorch's optimizers
/// update p.data(), whose version counter is not p's, so what is keyed by versions (fused
/// inference's folded weights, the int8 model's check of its float model) would not see the
/// step. PyTorch's Python optimizers update the parameters in place, which bumps them too.
void optimizerStep(torch::optim::Optimizer& optimizer);

/// Moves the model (and class weights) to devices[0]; checks that a distributed trainer
/// has one device of its group's kind and gives it its gradient reducer.
void prepareTrainer(TrainerState& s);

/// One training step on images X [B, 3, H, W] and labels Y int64 [B, H, W]: forward, loss and
/// backward, its gradients added to the pending ones; with update, the gradients (averaged
/// across a group's ranks) applied by the optimizer.
StepResult trainStep(TrainerState& s, const at::Tensor& X, const at::Tensor& Y, bool update = true);

/// Applies the pending gradients (averaged across a group's ranks) when there are any, as a
/// step with update would have: the end of an epoch whose batches do not fill the last
/// accumulation. Returns whether the optimizer stepped.
bool applyPending(TrainerState& s);

/// The loss and confusion matrix of a batch, in eval mode on devices[0].
EvalResult evaluateBatch(TrainerState& s, const at::Tensor& X, const at::Tensor& Y);

}  // namespace fcn
