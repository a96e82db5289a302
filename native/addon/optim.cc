// NativeOptimizer: SGD or AdamW (torch::optim) over parameter groups with their own options,
// the groups' learning rates for the schedulers of src/optim.ts, and the per-parameter state
// as PyTorch's state_dict()['state'] names it, for checkpoints.
#include "addon/optim.h"

#include <map>
#include <sstream>

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"
#include "train/trainer.h"

namespace fcn {

void initOptimizerClass(Napi::Env env, Napi::Object exports) { Optimizer::Init(env, exports); }

namespace {

std::vector<at::Tensor> allParams(torch::optim::Optimizer& o) {
  std::vector<at::Tensor> out;
  for (auto& group : o.param_groups()) {
    for (auto& p : group.params()) out.push_back(p);
  }
  return out;
}

std::unique_ptr<torch::optim::OptimizerOptions> sgdOptions(const Napi::Object& o) {
  auto options = std::make_unique<torch::optim::SGDOptions>(toDouble(o.Get("lr"), "lr"));
  options->momentum(toDouble(o.Get("momentum"), "momentum"))
      .dampening(toDouble(o.Get("dampening"), "dampening"))
      .weight_decay(toDouble(o.Get("weightDecay"), "weightDecay"))
      .nesterov(toBool(o.Get("nesterov"), "nesterov"));
  return options;
}

std::unique_ptr<torch::optim::OptimizerOptions> adamwOptions(const Napi::Object& o) {
  auto options = std::make_unique<torch::optim::AdamWOptions>(toDouble(o.Get("lr"), "lr"));
  options->betas({toDouble(o.Get("beta1"), "beta1"), toDouble(o.Get("beta2"), "beta2")})
      .eps(toDouble(o.Get("eps"), "eps"))
      .weight_decay(toDouble(o.Get("weightDecay"), "weightDecay"))
      .amsgrad(toBool(o.Get("amsgrad"), "amsgrad"));
  return options;
}

/// The parameters of one group, each of which must require grad.
std::vector<at::Tensor> groupParams(Napi::Env env, const Napi::Value& v, uint32_t group) {
  std::string where = "paramGroups[" + std::to_string(group) + "].params";
  if (!v.IsArray()) throwType(env, where, "an array of Tensors", v);
  auto list = v.As<Napi::Array>();
  std::vector<at::Tensor> params;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    std::string what = where + "[" + std::to_string(i) + "]";
    at::Tensor p = Tensor::unwrap(list.Get(i), what);
    if (!p.requires_grad()) {
      throw Napi::Error::New(env, what + " does not require grad; an optimizer updates only trainable tensors");
    }
    params.push_back(p);
  }
  return params;
}

/// "state.<index>.<field>" split, or false.
bool parseStateName(const std::string& name, size_t& index, std::string& field) {
  if (name.rfind("state.", 0) != 0) return false;
  std::istringstream parse(name.substr(6));
  std::string rest;
  if (!(parse >> index) || !std::getline(parse, rest) || rest.size() < 2 || rest[0] != '.') return false;
  field = rest.substr(1);
  return true;
}

}  // namespace

std::shared_ptr<torch::optim::Optimizer> Optimizer::unwrap(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).optimizerClass.Value())) {
    throwType(env, what, "an optimizer (optim.SGD, optim.AdamW)", v);
  }
  return Unwrap(v.As<Napi::Object>())->optimizer_;
}

void Optimizer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeOptimizer",
                                   {
                                       InstanceMethod<&Optimizer::step>("step"),
                                       InstanceMethod<&Optimizer::zeroGrad>("zeroGrad"),
                                       InstanceMethod<&Optimizer::getLrs>("getLrs"),
                                       InstanceMethod<&Optimizer::setLrs>("setLrs"),
                                       InstanceMethod<&Optimizer::stateDict>("stateDict"),
                                       InstanceMethod<&Optimizer::loadStateDict>("loadStateDict"),
                                   });
  addonData(env).optimizerClass = Napi::Persistent(cls);
  exports.Set("NativeOptimizer", cls);
}

/// new NativeOptimizer('sgd' | 'adamw', [{params, options}, ...]): every group's options
/// complete (TypeScript merged the defaults in): SGD {lr, momentum, dampening, weightDecay,
/// nesterov}, AdamW {lr, beta1, beta2, eps, weightDecay, amsgrad}.
Optimizer::Optimizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Optimizer>(info) {
  Napi::Env env = info.Env();
  kind_ = toString(info[0], "kind");
  if (kind_ != "sgd" && kind_ != "adamw") throwType(env, "kind", "'sgd' or 'adamw'", info[0]);
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0) {
    throwType(env, "paramGroups", "a non-empty array of parameter groups", info[1]);
  }
  auto list = info[1].As<Napi::Array>();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> options;
  for (uint32_t g = 0; g < list.Length(); ++g) {
    if (!list.Get(g).IsObject()) throwType(env, "paramGroups[" + std::to_string(g) + "]", "an object", list.Get(g));
    auto group = list.Get(g).As<Napi::Object>();
    groups.emplace_back(groupParams(env, group.Get("params"), g));
    if (!group.Get("options").IsObject()) throwType(env, "options", "an object", group.Get("options"));
    auto o = group.Get("options").As<Napi::Object>();
    options.push_back(kind_ == "sgd" ? sgdOptions(o) : adamwOptions(o));
  }
  optimizer_ = guard(env, [&]() -> std::shared_ptr<torch::optim::Optimizer> {
    std::shared_ptr<torch::optim::Optimizer> made;
    if (kind_ == "sgd") {
      made = std::make_shared<torch::optim::SGD>(groups, torch::optim::SGDOptions(0));
    } else {
      made = std::make_shared<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(0));
    }
    // Each group's own options, set after construction: libtorch would replace a group's
    // values that equal the options' constructor defaults (AdamW's lr 1e-3, say) with the
    // optimizer's defaults.
    for (size_t g = 0; g < options.size(); ++g) made->param_groups()[g].set_options(std::move(options[g]));
    return made;
  });
}

Napi::Value Optimizer::step(const Napi::CallbackInfo& info) {
  withModelLock(info.Env(), [&] { optimizerStep(*optimizer_); });
  return info.Env().Undefined();
}

Napi::Value Optimizer::zeroGrad(const Napi::CallbackInfo& info) {
  withModelLock(info.Env(), [&] { optimizer_->zero_grad(true); });
  return info.Env().Undefined();
}

/// The learning rate of each group, in order.
Napi::Value Optimizer::getLrs(const Napi::CallbackInfo& info) {
  auto& groups = optimizer_->param_groups();
  auto out = Napi::Array::New(info.Env(), groups.size());
  for (size_t g = 0; g < groups.size(); ++g) out.Set(static_cast<uint32_t>(g), groups[g].options().get_lr());
  return out;
}

/// setLrs([lr per group]).
Napi::Value Optimizer::setLrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& groups = optimizer_->param_groups();
  if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != groups.size()) {
    throwType(env, "lrs", "an array of " + std::to_string(groups.size()) + " learning rates (one per group)", info[0]);
  }
  auto list = info[0].As<Napi::Array>();
  std::vector<double> lrs;
  for (uint32_t g = 0; g < list.Length(); ++g) lrs.push_back(toDouble(list.Get(g), "lrs[" + std::to_string(g) + "]"));
  withModelLock(env, [&] {
    for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(lrs[g]);
  });
  return env.Undefined();
}

/// The per-parameter state as PyTorch's state_dict()['state'] names it, flattened:
/// "state.<index>.<field>" (index in parameter order over the groups). SGD: momentum_buffer
/// (none without momentum); AdamW: step (float32 scalar, as PyTorch's), exp_avg, exp_avg_sq
/// and, with amsgrad, max_exp_avg_sq.
Napi::Value Optimizer::stateDict(const Napi::CallbackInfo& info) {
  NamedTensors entries;
  auto params = allParams(*optimizer_);
  auto& state = optimizer_->state();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = state.find(params[i].unsafeGetTensorImpl());
    if (it == state.end()) continue;
    std::string prefix = "state." + std::to_string(i) + ".";
    if (kind_ == "sgd") {
      const auto& sgd = static_cast<const torch::optim::SGDParamState&>(*it->second);
      if (sgd.momentum_buffer().defined()) entries.emplace_back(prefix + "momentum_buffer", sgd.momentum_buffer());
    } else {
      const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*it->second);
      entries.emplace_back(prefix + "step", at::scalar_tensor(static_cast<double>(adam.step()), at::kFloat));
      entries.emplace_back(prefix + "exp_avg", adam.exp_avg());
      entries.emplace_back(prefix + "exp_avg_sq", adam.exp_avg_sq());
      if (adam.max_exp_avg_sq().defined()) entries.emplace_back(prefix + "max_exp_avg_sq", adam.max_exp_avg_sq());
    }
  }
  return Tensor::wrapNamed(info.Env(), entries);
}

/// Restores what stateDict() gave; names and shapes are checked before anything changes.
Napi::Value Optimizer::loadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NamedTensors entries = Tensor::unwrapNamed(info[0], "stateDict");
  auto params = allParams(*optimizer_);
  const std::vector<std::string> fields =
      kind_ == "sgd" ? std::vector<std::string>{"momentum_buffer"}
                     : std::vector<std::string>{"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  std::map<size_t, std::map<std::string, at::Tensor>> byParam;
  for (const auto& [name, tensor] : entries) {
    size_t index = 0;
    std::string field;
    bool known = parseStateName(name, index, field) && index < params.size() &&
                 std::find(fields.begin(), fields.end(), field) != fields.end();
    if (!known) {
      throw Napi::Error::New(env, "optimizer state: unexpected entry '" + name + "' (expected state.<0.." +
                                      std::to_string(params.size() - 1) + ">.<" + c10::Join("|", fields) + "> for " +
                                      (kind_ == "sgd" ? "SGD" : "AdamW") + ")");
    }
    bool scalar = field == "step";
    if (scalar ? tensor.numel() != 1 : tensor.sizes() != params[index].sizes()) {
      throw Napi::Error::New(
          env, "optimizer state: '" + name + "' has shape " + shapeString(tensor) +
                   (scalar ? ", expected one value"
                           : " but parameter " + std::to_string(index) + " has " + shapeString(params[index])));
    }
    byParam[index][field] = tensor;
  }
  if (kind_ == "adamw") {
    std::vector<bool> amsgrad;
    for (auto& group : optimizer_->param_groups()) {
      bool on = static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad();
      amsgrad.insert(amsgrad.end(), group.params().size(), on);
    }
    for (const auto& [index, state] : byParam) {
      if (amsgrad[index] && !state.count("max_exp_avg_sq")) {
        throw Napi::Error::New(env, "optimizer state: parameter " + std::to_string(index) +
                                        " lacks 'max_exp_avg_sq' (its group uses amsgrad)");
      }
      for (const char* needed : {"step", "exp_avg", "exp_avg_sq"}) {
        if (!state.count(needed)) {
          throw Napi::Error::New(env,
                                 "optimizer state: parameter " + std::to_string(index) + " lacks '" + needed + "'");
        }
      }
    }
  }
  withModelLock(env, [&] {
    auto& state = optimizer_->state();
    state.clear();
    for (const auto& [index, fieldsOf] : byParam) {
      auto like = [&](const at::Tensor& t) { return t.detach().to(params[index].options()).clone(); };
      if (kind_ == "sgd") {
        auto sgd = std::make_unique<torch::optim::SGDParamState>();
        sgd->momentum_buffer(like(fieldsOf.at("momentum_buffer")));
        state[params[index].unsafeGetTensorImpl()] = std::move(sgd);
      } else {
        auto adam = std::make_unique<torch::optim::AdamWParamState>();
        adam->step(static_cast<int64_t>(fieldsOf.at("step").item<double>()));
        adam->exp_avg(like(fieldsOf.at("exp_avg")));
        adam->exp_avg_sq(like(fieldsOf.at("exp_avg_sq")));
        auto max = fieldsOf.find("max_exp_avg_sq");
        if (max != fieldsOf.end()) adam->max_exp_avg_sq(like(max->second));
        state[params[index].unsafeGetTensorImpl()] = std::move(adam);
      }
    }
  });
  return env.Undefined();
}

}  // namespace fcn
