#include "trainer.h"

#include <c10/core/DeviceGuard.h>

#include <exception>
#include <thread>

#include "common.h"
#include "module.h"
#include "optim.h"
#include "tensor.h"
#include "torch_thread.h"

namespace fcn {

namespace {

std::string shapeOf(const at::Tensor& t) { return "[" + c10::Join(", ", t.sizes()) + "]"; }

void checkBatch(const at::Tensor& X, const at::Tensor& Y) {
  if (X.dim() != 4 || !at::isFloatingType(X.scalar_type())) {
    throw std::invalid_argument("images must be a float tensor [B, 3, H, W], got " +
                                std::string(dtypeName(X.scalar_type())) + " " + shapeOf(X));
  }
  if (Y.dim() != 3 || Y.scalar_type() != at::kLong) {
    throw std::invalid_argument("labels must be an int64 tensor [B, H, W], got " +
                                std::string(dtypeName(Y.scalar_type())) + " " + shapeOf(Y));
  }
  if (X.size(0) != Y.size(0) || X.size(0) == 0) {
    throw std::invalid_argument("images " + shapeOf(X) + " and labels " + shapeOf(Y) +
                                " must hold the same number (>= 1) of examples");
  }
}

/// Labels that are neither a class of logits nor the ignore index.
void checkLabels(const at::Tensor& labels, int64_t numClasses, int64_t ignoreIndex) {
  at::Tensor bad = (labels != ignoreIndex) & ((labels < 0) | (labels >= numClasses));
  if (bad.any().item<bool>()) {
    int64_t value = labels.masked_select(bad)[0].item<int64_t>();
    throw std::invalid_argument("label " + std::to_string(value) + " is not a class of the model's " +
                                std::to_string(numClasses) + " outputs (0.." + std::to_string(numClasses - 1) +
                                ") nor the ignore index " + std::to_string(ignoreIndex));
  }
}

struct PartResult {
  double loss = 0;
  int64_t correct = 0, pixels = 0;
};

/// Correctly labelled and labelled (not ignored) pixels of a batch.
std::pair<int64_t, int64_t> pixelAccuracy(const at::Tensor& logits, const at::Tensor& labels, int64_t ignoreIndex) {
  at::Tensor valid = labels != ignoreIndex;
  int64_t correct = ((logits.argmax(1) == labels) & valid).sum().item<int64_t>();
  return {correct, valid.sum().item<int64_t>()};
}

/// Forward, loss and backward of one part of a batch on one device.
PartResult runPart(torch::nn::Module& model, const ChapterLoss& loss, c10::Device device, const at::Tensor& X,
                   const at::Tensor& Y) {
  c10::DeviceGuard deviceGuard(device);
  at::AutoGradMode gradMode(true);
  model.train(true);
  at::Tensor x = modelInput(model, X.to(device, /*non_blocking=*/true)), y = Y.to(device, /*non_blocking=*/true);
  at::Tensor logits = forwardModule(model, x);
  at::Tensor perImage = loss(logits, y);
  perImage.sum().backward();
  at::NoGradGuard noGrad;
  auto [correct, pixels] = pixelAccuracy(logits.detach(), y, loss.ignoreIndex);
  return {perImage.sum().item<double>(), correct, pixels};
}

/// Replicas of the model for devices[1..], made once; cloning draws no random numbers that
/// the caller would miss (the default generator's state is put back).
void ensureReplicas(Trainer::State& s) {
  if (s.replicas.size() + 1 >= s.devices.size()) return;
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor rngState = generator.get_state();
  for (size_t i = s.replicas.size() + 1; i < s.devices.size(); ++i) {
    try {
      s.replicas.push_back(s.model->clone(s.devices[i]));
      useChannelsLast(*s.replicas.back());
    } catch (const std::exception& e) {
      generator.set_state(rngState);
      throw std::runtime_error("cannot replicate the model on " + s.devices[i].str() + ": " + messageOf(e));
    }
  }
  generator.set_state(rngState);
}

PartResult trainStep(Trainer::State& s, const at::Tensor& X, const at::Tensor& Y) {
  if (!s.optimizer) throw std::logic_error("this trainer only evaluates: it was made without an optimizer");
  checkBatch(X, Y);
  s.optimizer->zero_grad(true);
  size_t ways = std::min<size_t>(s.devices.size(), static_cast<size_t>(X.size(0)));
  if (s.group) {
    // As DDP with broadcast_buffers: rank 0's BatchNorm statistics before every forward.
    if (!s.model->buffers(true).empty()) broadcastState(*s.group, *s.model, false, true, 0);
    PartResult r = runPart(*s.model, s.loss, s.devices[0], X, Y);
    averageGradients(*s.group, *s.model);
    s.optimizer->step();
    return r;
  }
  if (ways == 1) {
    PartResult r = runPart(*s.model, s.loss, s.devices[0], X, Y);
    s.optimizer->step();
    return r;
  }
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
      parts[i] = runPart(*models[i], s.loss, s.devices[i], xs[i], ys[i]);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  bool allCuda = std::all_of(s.devices.begin(), s.devices.begin() + xs.size(), [](auto d) { return d.is_cuda(); });
  if (allCuda) {
    // One thread per GPU, as torch.nn.parallel.parallel_apply does.
    std::vector<std::thread> threads;
    for (size_t i = 1; i < xs.size(); ++i) threads.emplace_back(run, i);
    run(0);
    for (auto& t : threads) t.join();
  } else {
    // CPU parts share the cores' OpenMP team: one after the other.
    for (size_t i = 0; i < xs.size(); ++i) run(i);
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  // Sum the replicas' gradients onto the model's parameters (reduce-add).
  auto params = s.model->parameters(true);
  {
    at::NoGradGuard noGrad;
    for (size_t r = 1; r < xs.size(); ++r) {
      auto replicaParams = models[r]->parameters(true);
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
  s.optimizer->step();
  PartResult total;
  for (const auto& p : parts) {
    total.loss += p.loss;
    total.correct += p.correct;
    total.pixels += p.pixels;
  }
  return total;
}

}  // namespace

at::Tensor ChapterLoss::operator()(const at::Tensor& logits, const at::Tensor& labels) const {
  if (logits.dim() != 4 || logits.size(0) != labels.size(0) || logits.size(2) != labels.size(1) ||
      logits.size(3) != labels.size(2)) {
    throw std::invalid_argument("the model's output " + shapeOf(logits) + " does not fit the labels " +
                                shapeOf(labels) +
                                ": an FCN must give [B, classes, H, W] for [B, H, W] labels (crop sides that are "
                                "multiples of 32 keep the size)");
  }
  checkLabels(labels, logits.size(1), ignoreIndex);
  at::Tensor perPixel =
      at::cross_entropy_loss(logits, labels, classWeights, at::Reduction::None, ignoreIndex, labelSmoothing);
  return perPixel.mean(2).mean(1);
}

void Trainer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTrainer",
                                   {
                                       InstanceMethod<&Trainer::step>("step"),
                                       InstanceMethod<&Trainer::evaluate>("evaluate"),
                                   });
  exports.Set("NativeTrainer", cls);
}

/// new NativeTrainer(model, optimizer or null (evaluation only), devices, {ignoreIndex,
/// labelSmoothing, classWeights?}, processGroup or null) moves the model to devices[0].
Trainer::Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
  Napi::Env env = info.Env();
  state_ = std::make_shared<State>();
  state_->model = Module::unwrap(info[0], "model");
  if (!info[1].IsNull()) state_->optimizer = Optimizer::unwrap(info[1], "optimizer");
  if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() == 0) {
    throwType(env, "devices", "a non-empty array of devices", info[2]);
  }
  auto devices = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < devices.Length(); ++i) state_->devices.push_back(toDevice(devices.Get(i)));
  if (!info[3].IsObject()) throwType(env, "loss", "an object", info[3]);
  auto loss = info[3].As<Napi::Object>();
  state_->loss.ignoreIndex = toInt(loss.Get("ignoreIndex"), "ignoreIndex");
  state_->loss.labelSmoothing = toDouble(loss.Get("labelSmoothing"), "labelSmoothing");
  if (Tensor::isTensor(loss.Get("classWeights"))) {
    state_->loss.classWeights = Tensor::unwrap(loss.Get("classWeights"), "classWeights");
  }
  if (!info[4].IsNull() && !info[4].IsUndefined()) {
    state_->group = ProcessGroup::unwrap(info[4], "processGroup");
    if (state_->devices.size() != 1 || state_->devices[0].type() != state_->group->device.type()) {
      throw Napi::Error::New(env, "devices: a distributed trainer uses one device, of the kind its process group's " +
                                      state_->group->backend + " backend works on (" + state_->group->device.str() +
                                      ")");
    }
  }
  guard(env, [&] {
    auto lock = lockModels();
    state_->model->to(state_->devices[0]);
    useChannelsLast(*state_->model);
    if (state_->loss.classWeights) state_->loss.classWeights = state_->loss.classWeights->to(state_->devices[0]);
  });
}

/// step(X, Y) -> Promise<{loss, correct, pixels}>: loss is the sum of the per-image losses.
Napi::Value Trainer::step(const Napi::CallbackInfo& info) {
  at::Tensor X = Tensor::unwrap(info[0], "images");
  at::Tensor Y = Tensor::unwrap(info[1], "labels");
  return runAsync(info.Env(), [state = state_, X, Y]() -> Settle {
    PartResult r = trainStep(*state, X, Y);
    return [r](Napi::Env env) -> Napi::Value {
      auto out = Napi::Object::New(env);
      out.Set("loss", r.loss);
      out.Set("correct", static_cast<double>(r.correct));
      out.Set("pixels", static_cast<double>(r.pixels));
      return out;
    };
  });
}

/// evaluate(X, Y) -> Promise<{loss, confusion}>, in eval mode on devices[0]: confusion is
/// int64 [C, C], rows the true class and columns the predicted one, ignored pixels left out.
Napi::Value Trainer::evaluate(const Napi::CallbackInfo& info) {
  at::Tensor X = Tensor::unwrap(info[0], "images");
  at::Tensor Y = Tensor::unwrap(info[1], "labels");
  return runAsync(info.Env(), [state = state_, X, Y]() -> Settle {
    checkBatch(X, Y);
    c10::Device device = state->devices[0];
    c10::DeviceGuard deviceGuard(device);
    at::NoGradGuard noGrad;
    state->model->train(false);
    at::Tensor y = Y.to(device);
    at::Tensor logits = forwardModule(*state->model, modelInput(*state->model, X.to(device)));
    double loss = state->loss(logits, y).sum().item<double>();
    int64_t classes = logits.size(1);
    at::Tensor valid = y != state->loss.ignoreIndex;
    at::Tensor pairs = y.masked_select(valid) * classes + logits.argmax(1).masked_select(valid);
    at::Tensor confusion = at::bincount(pairs, {}, classes * classes).reshape({classes, classes}).to(at::kCPU);
    return [loss, confusion](Napi::Env env) -> Napi::Value {
      auto out = Napi::Object::New(env);
      out.Set("loss", loss);
      out.Set("confusion", Tensor::wrap(env, confusion));
      return out;
    };
  });
}

}  // namespace fcn
