// The training engine (see trainer.h): batch checks, the losses, one step on one device,
// data-parallel or distributed, and the evaluation of a batch.
#include "train/trainer.h"

#include <c10/core/DeviceGuard.h>

#include <exception>
#include <limits>
#include <thread>

#include "core/channel_argmax.h"
#include "core/cpu_allocator.h"
#include "core/describe.h"
#include "models/run_model.h"
#include "models/state_dict.h"
#include "train/losses.h"

namespace fcn {

namespace {

void checkBatch(const at::Tensor& X, const at::Tensor& Y) {
  if (X.dim() != 4 || !at::isFloatingType(X.scalar_type())) {
    throw std::invalid_argument("images must be a float tensor [B, 3, H, W], got " + describeTensor(X));
  }
  if (Y.dim() != 3 || Y.scalar_type() != at::kLong) {
    throw std::invalid_argument("labels must be an int64 tensor [B, H, W], got " + describeTensor(Y));
  }
  if (X.size(0) != Y.size(0) || X.size(0) == 0) {
    throw std::invalid_argument("images " + shapeString(X) + " and labels " + shapeString(Y) +
                                " must hold the same number (>= 1) of examples");
  }
}

/// Checks that logits fit labels [B, H, W] and that every label (their range) is a class or
/// ignored: from the shapes and the range alone, with no device sync.
void checkOutput(const at::Tensor& logits, const at::Tensor& labels, int64_t ignoreIndex, const LabelRange& range) {
  if (logits.dim() != 4 || logits.size(0) != labels.size(0) || logits.size(2) != labels.size(1) ||
      logits.size(3) != labels.size(2)) {
    throw std::invalid_argument("the model's output " + shapeString(logits) + " does not fit the labels " +
                                shapeString(labels) +
                                ": an FCN must give [B, classes, H, W] for [B, H, W] labels (crop sides that are "
                                "multiples of 32 keep the size)");
  }
  int64_t numClasses = logits.size(1);
  if (range.min > range.max || (range.min >= 0 && range.max < numClasses)) return;
  int64_t value = range.min < 0 ? range.min : range.max;
  throw std::invalid_argument("label " + std::to_string(value) + " is not a class of the model's " +
                              std::to_string(numClasses) + " outputs (0.." + std::to_string(numClasses - 1) +
                              ") nor the ignore index " + std::to_string(ignoreIndex));
}

/// PyTorch's cross_entropy_loss of logits [B, C, H, W] for labels [B, H, W] (reduction None:
/// [B, H, W]). Channels-last logits (the sub-pixel upsampling's in training) go as rows
/// [B*H*W, C], a view: libtorch's log_softmax over dim 1 would copy them to channels-first
/// first and hand back a channels-first gradient that the upsampling's backward copies again.
at::Tensor crossEntropy(const at::Tensor& logits, const at::Tensor& labels, const SegmentationLoss& loss,
                        at::Reduction::Reduction reduction) {
  int64_t classes = logits.size(1);
  if (!logits.is_contiguous(at::MemoryFormat::ChannelsLast) || logits.is_contiguous() || labels.numel() == 0) {
    return at::cross_entropy_loss(logits, labels, loss.classWeights, reduction, loss.ignoreIndex, loss.labelSmoothing);
  }
  at::Tensor rows = logits.permute({0, 2, 3, 1}).reshape({-1, classes});
  at::Tensor value = at::cross_entropy_loss(rows, labels.reshape({-1}), loss.classWeights, reduction, loss.ignoreIndex,
                                            loss.labelSmoothing);
  return reduction == at::Reduction::None ? value.view(labels.sizes()) : value;
}

/// What a part of a step gave, still on its device: read after the optimizer's update is
/// queued, so that a GPU runs the whole step without waiting for the host in between.
struct PartResult {
  at::Tensor loss, correct, pixels;
  /// The values on the host (one copy, one wait).
  StepResult read() const {
    at::Tensor values = at::stack({loss.to(at::kDouble), correct.to(at::kDouble), pixels.to(at::kDouble)}).cpu();
    const double* v = values.const_data_ptr<double>();
    return {v[0], static_cast<int64_t>(v[1]), static_cast<int64_t>(v[2])};
  }
};

/// Forward, loss and backward of one part of a batch on one device. A model already in
/// training mode keeps the modes of its modules (BatchNorm or Dropout frozen in eval mode
/// stay so); one in eval mode is put in training mode. denominator: the torchvision loss's,
/// of the whole batch.
/// scale: what the loss counts for in the gradients (an accumulation's share), not in the value.
PartResult runPart(torch::nn::Module& model, const SegmentationLoss& loss, c10::Device device, const at::Tensor& X,
                   const at::Tensor& Y, const at::Tensor& denominator, const LabelRange& range, double share = 1.0,
                   double scale = 1.0) {
  c10::DeviceGuard deviceGuard(device);
  at::AutoGradMode gradMode(true);
  if (!model.is_training()) model.train(true);
  at::Tensor y = Y.to(device, /*non_blocking=*/true);
  NamedOutputs outputs = runModelOutputs(model, X.to(device, /*non_blocking=*/true));
  at::Tensor value = loss(outputs, y, denominator.to(device), range, share);
  (scale == 1.0 ? value : value * scale).backward();
  at::NoGradGuard noGrad;
  ArgmaxHits hits = argmaxHits(outputs.front().second.detach(), y, loss.ignoreIndex);
  return {value.detach(), hits.hits, hits.labelled};
}

/// Replicas of the model for devices[1..], made once; cloning draws no random numbers that
/// the caller would miss (the default generator's state is put back).
void ensureReplicas(TrainerState& s) {
  if (s.replicas.size() + 1 >= s.devices.size()) return;
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor rngState = generator.get_state();
  for (size_t i = s.replicas.size() + 1; i < s.devices.size(); ++i) {
    try {
      s.replicas.push_back(s.model->clone(s.devices[i]));
    } catch (const std::exception& e) {
      generator.set_state(rngState);
      throw std::runtime_error("cannot replicate the model on " + s.devices[i].str() + ": " + messageOf(e));
    }
  }
  generator.set_state(rngState);
}

/// Sums the replicas' gradients onto the model's parameters (nn.DataParallel's reduce-add).
void sumReplicaGradients(torch::nn::Module& model, const std::vector<std::shared_ptr<torch::nn::Module>>& replicas) {
  at::NoGradGuard noGrad;
  auto params = model.parameters(true);
  for (const auto& replica : replicas) {
    auto replicaParams = replica->parameters(true);
    for (size_t k = 0; k < params.size(); ++k) {
      const at::Tensor& g = replicaParams[k].grad();
      if (!g.defined()) continue;
      at::Tensor onModel = g.to(params[k].device());
      if (params[k].grad().defined()) {
        params[k].mutable_grad().add_(onModel);
      } else {
        params[k].mutable_grad() = onModel;
      }
    }
  }
}

/// What a batch's loss counts for in the gradients of its accumulation.
double accumulationScale(const TrainerState& s) {
  return s.loss.kind == SegmentationLoss::Kind::Torchvision ? 1.0 / static_cast<double>(s.accumulate) : 1.0;
}

/// As DDP with broadcast_buffers: rank 0's BatchNorm statistics before the forward; the
/// gradients of a batch that updates averaged across the ranks while its backward runs.
std::vector<PartResult> stepDistributed(TrainerState& s, const at::Tensor& X, const at::Tensor& Y,
                                        const at::Tensor& denominator, const LabelRange& range, bool update) {
  if (!s.model->buffers(true).empty()) broadcastState(*s.group, *s.model, false, true, 0);
  if (update) s.reducer->arm();
  PartResult r = runPart(*s.model, s.loss, s.devices[0], X, Y, denominator, range, 1.0, accumulationScale(s));
  if (update) s.allReduceWait = s.reducer->finish();
  return {r};
}

/// The batch split over `ways` devices: replicas refreshed from the model run their parts
/// (one thread per GPU; CPU parts one after the other, sharing the cores' OpenMP team), and
/// their gradients are summed onto the model.
std::vector<PartResult> stepDataParallel(TrainerState& s, const at::Tensor& X, const at::Tensor& Y,
                                         const at::Tensor& denominator, const LabelRange& range, size_t ways) {
  ensureReplicas(s);
  std::vector<std::shared_ptr<torch::nn::Module>> models{s.model};
  for (size_t i = 0; i + 1 < ways; ++i) {
    copyState(*s.model, *s.replicas[i], std::nullopt);  // the model's current weights
    s.replicas[i]->zero_grad(true);
    models.push_back(s.replicas[i]);
  }
  auto xs = X.chunk(static_cast<int64_t>(ways)), ys = Y.chunk(static_cast<int64_t>(ways));
  std::vector<PartResult> parts(xs.size());
  std::vector<std::exception_ptr> errors(xs.size());
  auto run = [&](size_t i) {
    try {
      double share = static_cast<double>(xs[i].size(0)) / static_cast<double>(X.size(0));
      parts[i] =
          runPart(*models[i], s.loss, s.devices[i], xs[i], ys[i], denominator, range, share, accumulationScale(s));
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  bool allCuda = std::all_of(s.devices.begin(), s.devices.begin() + xs.size(), [](auto d) { return d.is_cuda(); });
  if (allCuda) {
    std::vector<std::thread> threads;
    for (size_t i = 1; i < xs.size(); ++i) threads.emplace_back(run, i);
    run(0);
    for (auto& t : threads) t.join();
  } else {
    for (size_t i = 0; i < xs.size(); ++i) run(i);
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  sumReplicaGradients(*s.model, {models.begin() + 1, models.begin() + static_cast<std::ptrdiff_t>(xs.size())});
  return parts;
}

}  // namespace

LabelRange LabelRange::of(const at::Tensor& labels, int64_t ignoreIndex) {
  if (labels.numel() == 0) return {};
  at::NoGradGuard noGrad;
  at::Tensor valid = labels != ignoreIndex;
  at::Tensor low = at::where(valid, labels, std::numeric_limits<int64_t>::max()).min();
  at::Tensor high = at::where(valid, labels, std::numeric_limits<int64_t>::min()).max();
  at::Tensor both = at::stack({low, high}).cpu();
  const int64_t* v = both.const_data_ptr<int64_t>();
  return {v[0], v[1]};
}

at::Tensor SegmentationLoss::denominator(const at::Tensor& labels) const {
  at::NoGradGuard noGrad;
  at::Tensor valid = labels != ignoreIndex;
  if (!classWeights) return valid.sum().to(at::kFloat).clamp_min(1);
  at::Tensor weights = classWeights->to(labels.device());
  at::Tensor ids = labels.masked_select(valid).clamp(0, weights.size(0) - 1);
  return weights.index_select(0, ids).sum().to(at::kFloat).clamp_min(1e-12);
}

at::Tensor SegmentationLoss::operator()(const NamedOutputs& outputs, const at::Tensor& labels,
                                        const at::Tensor& denominator, const LabelRange& range, double share) const {
  at::Tensor total;
  auto add = [&total](double weight, const at::Tensor& term) {
    total = total.defined() ? total + weight * term : weight == 1.0 ? term : weight * term;
  };
  // A batch mean counts as the chapter's sum over the images, or as this part's share.
  const double meanWeight = kind == Kind::Chapter ? static_cast<double>(labels.size(0)) : share;
  for (const auto& [name, logits] : outputs) {
    double weight = name == "out" ? 1.0 : name == "aux" ? auxWeight : 0.0;
    if (weight == 0) continue;
    checkOutput(logits, labels, ignoreIndex, range);
    if (crossEntropyWeight != 0) {
      at::Tensor term = kind == Kind::Chapter
                            ? crossEntropy(logits, labels, *this, at::Reduction::None).mean(2).mean(1).sum()
                            : crossEntropy(logits, labels, *this, at::Reduction::Sum) / denominator;
      add(weight * crossEntropyWeight, term);
    }
    if (diceWeight != 0) add(weight * diceWeight * meanWeight, diceLoss(logits, labels, ignoreIndex));
    if (focalWeight != 0) add(weight * focalWeight * meanWeight, focalLoss(logits, labels, ignoreIndex, focalGamma));
  }
  return total;
}

void optimizerStep(torch::optim::Optimizer& optimizer) {
  optimizer.step();
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.defined() && !p.is_inference()) p.unsafeGetTensorImpl()->bump_version();
    }
  }
}

void prepareTrainer(TrainerState& s) {
  if (s.devices.empty()) throw std::invalid_argument("devices: expected at least one device");
  if (s.group && (s.devices.size() != 1 || s.devices[0].type() != s.group->device.type())) {
    throw std::invalid_argument("devices: a distributed trainer uses one device, of the kind its process group's " +
                                s.group->backend + " backend works on (" + s.group->device.str() + ")");
  }
  s.model->to(s.devices[0]);
  if (s.loss.classWeights) s.loss.classWeights = s.loss.classWeights->to(s.devices[0]);
  if (s.group) s.reducer = std::make_unique<GradientReducer>(s.group, *s.model);
}

StepResult trainStep(TrainerState& s, const at::Tensor& X, const at::Tensor& Y, bool update) {
  if (!s.optimizer) throw std::logic_error("this trainer only evaluates: it was made without an optimizer");
  checkBatch(X, Y);
  PeakBound peakBound;  // the allocator's cache may not raise the step's peak memory
  if (s.pending == 0) s.optimizer->zero_grad(true);
  size_t ways = std::min<size_t>(s.devices.size(), static_cast<size_t>(X.size(0)));
  LabelRange range = LabelRange::of(Y, s.loss.ignoreIndex);
  at::Tensor denominator = s.loss.denominator(Y);
  std::vector<PartResult> parts = s.group ? stepDistributed(s, X, Y, denominator, range, update)
                                  : ways > 1
                                      ? stepDataParallel(s, X, Y, denominator, range, ways)
                                      : std::vector<PartResult>{runPart(*s.model, s.loss, s.devices[0], X, Y,
                                                                        denominator, range, 1.0, accumulationScale(s))};
  ++s.pending;
  StepResult r;
  if (update) {
    optimizerStep(*s.optimizer);
    s.pending = 0;
    r.updated = true;
    r.allReduceWait = s.group ? s.allReduceWait : 0;
  }
  for (const auto& part : parts) {
    StepResult p = part.read();
    r.loss += p.loss;
    r.correct += p.correct;
    r.pixels += p.pixels;
  }
  if (s.loss.kind == SegmentationLoss::Kind::Torchvision) r.loss *= static_cast<double>(X.size(0));
  return r;
}

bool applyPending(TrainerState& s) {
  if (s.pending == 0) return false;
  if (s.group) s.allReduceWait = s.reducer->finish();
  optimizerStep(*s.optimizer);
  s.pending = 0;
  return true;
}

EvalResult evaluateBatch(TrainerState& s, const at::Tensor& X, const at::Tensor& Y) {
  checkBatch(X, Y);
  c10::Device device = s.devices[0];
  c10::DeviceGuard deviceGuard(device);
  at::NoGradGuard noGrad;
  s.model->train(false);
  LabelRange range = LabelRange::of(Y, s.loss.ignoreIndex);
  at::Tensor y = Y.to(device);
  NamedOutputs outputs = runModelOutputs(*s.model, X.to(device));
  double loss = s.loss(outputs, y, s.loss.denominator(y), range).item<double>();
  if (s.loss.kind == SegmentationLoss::Kind::Torchvision) loss *= static_cast<double>(X.size(0));
  const at::Tensor& logits = outputs.front().second;
  int64_t classes = logits.size(1);
  at::Tensor valid = y != s.loss.ignoreIndex;
  at::Tensor pairs = y.masked_select(valid) * classes + logits.argmax(1).masked_select(valid);
  at::Tensor confusion = at::bincount(pairs, {}, classes * classes).reshape({classes, classes}).to(at::kCPU);
  return {loss, confusion};
}

}  // namespace fcn
