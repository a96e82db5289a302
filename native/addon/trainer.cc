// NativeTrainer: a model bound to its optimizer, devices, loss and process group
// (train/trainer.h), whose steps and evaluations run on the torch thread.
#include "train/trainer.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "addon/optim.h"
#include "addon/process_group.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"

namespace fcn {

namespace {

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "NativeTrainer",
                                     {
                                         InstanceMethod<&Trainer::step>("step"),
                                         InstanceMethod<&Trainer::applyPending>("applyPending"),
                                         InstanceMethod<&Trainer::evaluate>("evaluate"),
                                     });
    exports.Set("NativeTrainer", cls);
  }

  /// new NativeTrainer(model, optimizer or null (evaluation only), devices, {kind: 'chapter' |
  /// 'torchvision', ignoreIndex, labelSmoothing, auxWeight, classWeights?}, processGroup or
  /// null, accumulate: the batches of one update) moves the model to devices[0].
  explicit Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
    Napi::Env env = info.Env();
    state_ = std::make_shared<TrainerState>();
    state_->model = Module::unwrap(info[0], "model");
    if (!info[1].IsNull()) state_->optimizer = Optimizer::unwrap(info[1], "optimizer");
    if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() == 0) {
      throwType(env, "devices", "a non-empty array of devices", info[2]);
    }
    auto devices = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < devices.Length(); ++i) state_->devices.push_back(toDevice(devices.Get(i)));
    if (!info[3].IsObject()) throwType(env, "loss", "an object", info[3]);
    auto loss = info[3].As<Napi::Object>();
    std::string kind = toString(loss.Get("kind"), "loss.kind");
    if (kind != "chapter" && kind != "torchvision")
      throwType(env, "loss.kind", "'chapter' or 'torchvision'", loss.Get("kind"));
    state_->loss.kind = kind == "chapter" ? SegmentationLoss::Kind::Chapter : SegmentationLoss::Kind::Torchvision;
    state_->loss.auxWeight = toDouble(loss.Get("auxWeight"), "auxWeight");
    state_->loss.ignoreIndex = toInt(loss.Get("ignoreIndex"), "ignoreIndex");
    state_->loss.labelSmoothing = toDouble(loss.Get("labelSmoothing"), "labelSmoothing");
    state_->loss.crossEntropyWeight = toDouble(loss.Get("crossEntropy"), "loss.terms.crossEntropy");
    state_->loss.diceWeight = toDouble(loss.Get("dice"), "loss.terms.dice");
    state_->loss.focalWeight = toDouble(loss.Get("focal"), "loss.terms.focal");
    state_->loss.focalGamma = toDouble(loss.Get("focalGamma"), "loss.focalGamma");
    if (Tensor::isTensor(loss.Get("classWeights"))) {
      state_->loss.classWeights = Tensor::unwrap(loss.Get("classWeights"), "classWeights");
    }
    if (given(info[4])) state_->group = ProcessGroup::unwrap(info[4], "processGroup");
    state_->accumulate = toInt(info[5], "accumulate");
    if (state_->accumulate < 1) throwType(env, "accumulate", "an integer >= 1", info[5]);
    withModelLock(env, [&] { prepareTrainer(*state_); });
  }

 private:
  /// step(X, Y, update) -> Promise<{loss, correct, pixels, updated}>: loss is the sum of the
  /// per-image losses (chapter) or the mean loss times the images (torchvision); without
  /// update the gradients wait for the accumulation's last batch.
  Napi::Value step(const Napi::CallbackInfo& info) {
    at::Tensor X = Tensor::unwrap(info[0], "images");
    at::Tensor Y = Tensor::unwrap(info[1], "labels");
    bool update = toBool(info[2], "update");
    return runAsync(info.Env(), [state = state_, X, Y, update]() -> Settle {
      StepResult r = trainStep(*state, X, Y, update);
      return [r](Napi::Env env) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("loss", r.loss);
        out.Set("correct", static_cast<double>(r.correct));
        out.Set("pixels", static_cast<double>(r.pixels));
        out.Set("updated", r.updated);
        out.Set("allReduceWait", r.allReduceWait);
        return out;
      };
    });
  }

  /// applyPending() -> Promise<boolean>: the pending gradients applied, if any.
  Napi::Value applyPending(const Napi::CallbackInfo& info) {
    return runAsync(info.Env(), [state = state_]() -> Settle {
      bool updated = fcn::applyPending(*state);
      return [updated](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, updated); };
    });
  }

  /// evaluate(X, Y) -> Promise<{loss, confusion}>, in eval mode on devices[0]: confusion is
  /// int64 [C, C], rows the true class and columns the predicted one, ignored pixels left out.
  Napi::Value evaluate(const Napi::CallbackInfo& info) {
    at::Tensor X = Tensor::unwrap(info[0], "images");
    at::Tensor Y = Tensor::unwrap(info[1], "labels");
    return runAsync(info.Env(), [state = state_, X, Y]() -> Settle {
      EvalResult r = evaluateBatch(*state, X, Y);
      return [r](Napi::Env env) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("loss", r.loss);
        out.Set("confusion", Tensor::wrap(env, r.confusion));
        return out;
      };
    });
  }

  std::shared_ptr<TrainerState> state_;
};

}  // namespace

void initTrainerClass(Napi::Env env, Napi::Object exports) { Trainer::Init(env, exports); }

}  // namespace fcn
