#include "addon/module.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"
#include "core/cpu_allocator.h"
#include "models/registry.h"
#include "models/run_model.h"
#include "models/sequential.h"
#include "models/state_dict.h"

namespace fcn {

void initModuleClass(Napi::Env env, Napi::Object exports) { Module::Init(env, exports); }

void Module::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeModule",
                                   {
                                       InstanceAccessor<&Module::kind>("kind"),
                                       InstanceMethod<&Module::forward>("forward"),
                                       InstanceMethod<&Module::forwardAsync>("forwardAsync"),
                                       InstanceMethod<&Module::forwardOutputs>("forwardOutputs"),
                                       InstanceMethod<&Module::forwardOutputsAsync>("forwardOutputsAsync"),
                                       InstanceMethod<&Module::namedChildren>("namedChildren"),
                                       InstanceMethod<&Module::namedParameters>("namedParameters"),
                                       InstanceMethod<&Module::namedBuffers>("namedBuffers"),
                                       InstanceMethod<&Module::stateDict>("stateDict"),
                                       InstanceMethod<&Module::loadStateDict>("loadStateDict"),
                                       InstanceMethod<&Module::train>("train"),
                                       InstanceMethod<&Module::isTraining>("isTraining"),
                                       InstanceMethod<&Module::to>("to"),
                                       InstanceMethod<&Module::zeroGrad>("zeroGrad"),
                                       InstanceMethod<&Module::addModule>("addModule"),
                                       InstanceMethod<&Module::dispose>("dispose"),
                                       InstanceAccessor<&Module::disposed>("disposed"),
                                   });
  addonData(env).moduleClass = Napi::Persistent(cls);
  exports.Set("NativeModule", cls);
}

Module::Module(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Module>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeModule is made by fcn-torch functions, not with new");
  }
  module_ = *info[0].As<Napi::External<std::shared_ptr<torch::nn::Module>>>().Data();
}

const std::shared_ptr<torch::nn::Module>& Module::held(Napi::Env env) const {
  if (!module_) throw Napi::Error::New(env, "this module was disposed and can no longer be used");
  return module_;
}

/// dispose(): lets go of the module; its tensors are freed once nothing else holds them (a
/// parent, an optimizer, a running forward, tensors from its parameters).
Napi::Value Module::dispose(const Napi::CallbackInfo& info) {
  module_.reset();
  return info.Env().Undefined();
}

Napi::Value Module::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !module_); }

Napi::Object Module::wrap(Napi::Env env, std::shared_ptr<torch::nn::Module> module) {
  return addonData(env).moduleClass.New({Napi::External<std::shared_ptr<torch::nn::Module>>::New(env, &module)});
}

std::shared_ptr<torch::nn::Module> Module::unwrap(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).moduleClass.Value())) {
    throwType(env, what, "a Module", v);
  }
  return Unwrap(v.As<Napi::Object>())->held(env);
}

Napi::Value Module::kind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kindName(*held(info.Env())));
}

namespace {

/// model's output for x, and the CPU bytes it keeps alive (itself and, when autograd
/// recorded the forward, the graph's saved activations): what the JS engine is told.
std::pair<at::Tensor, int64_t> runMeasured(torch::nn::Module& model, const at::Tensor& x) {
  int64_t before = cpuBytesInUse();
  at::Tensor y = runModel(model, x);
  return {y, cpuBytesInUse() - before};
}

}  // namespace

Napi::Value Module::forward(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  at::Tensor x = Tensor::unwrap(info[0], "input");
  auto [y, heldBytes] = withModelLock(info.Env(), [&] { return runMeasured(*module, x); });
  return Tensor::wrap(info.Env(), y, heldBytes);
}

Napi::Value Module::forwardAsync(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  at::Tensor x = Tensor::unwrap(info[0], "input");
  return runAsync(info.Env(), [module, x]() -> Settle {
    auto [y, heldBytes] = runMeasured(*module, x);
    return [y, heldBytes](Napi::Env env) { return Tensor::wrap(env, y, heldBytes); };
  });
}

/// forwardOutputs(x) -> [[name, tensor], ...]: every named output ("out", "aux", ...).
Napi::Value Module::forwardOutputs(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  at::Tensor x = Tensor::unwrap(info[0], "input");
  return withModelLock(info.Env(), [&] { return Tensor::wrapNamed(info.Env(), runModelOutputs(*module, x)); });
}

Napi::Value Module::forwardOutputsAsync(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  at::Tensor x = Tensor::unwrap(info[0], "input");
  return runAsync(info.Env(), [module, x]() -> Settle {
    NamedOutputs outputs = runModelOutputs(*module, x);
    return [outputs](Napi::Env env) { return Tensor::wrapNamed(env, outputs); };
  });
}

Napi::Value Module::namedChildren(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  Napi::Env env = info.Env();
  auto children = withModelLock(env, [&] { return module->named_children(); });
  auto out = Napi::Array::New(env, children.size());
  uint32_t i = 0;
  for (const auto& c : children) {
    auto pair = Napi::Array::New(env, 2);
    pair.Set(0u, c.key());
    pair.Set(1u, wrap(env, c.value()));
    out.Set(i++, pair);
  }
  return out;
}

Napi::Value Module::namedParameters(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  bool recurse = !given(info[0]) || toBool(info[0], "recurse");
  NamedTensors entries;
  withModelLock(info.Env(), [&] {
    for (const auto& p : module->named_parameters(recurse)) entries.emplace_back(p.key(), p.value());
  });
  return Tensor::wrapNamed(info.Env(), entries);
}

Napi::Value Module::namedBuffers(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  bool recurse = !given(info[0]) || toBool(info[0], "recurse");
  NamedTensors entries;
  withModelLock(info.Env(), [&] {
    for (const auto& b : module->named_buffers(recurse)) entries.emplace_back(b.key(), b.value());
  });
  return Tensor::wrapNamed(info.Env(), entries);
}

Napi::Value Module::stateDict(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  return Tensor::wrapNamed(info.Env(), withModelLock(info.Env(), [&] { return fcn::stateDict(*module); }));
}

/// loadStateDict([[name, tensor], ...], strict) -> {missingKeys, unexpectedKeys}
Napi::Value Module::loadStateDict(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  Napi::Env env = info.Env();
  NamedTensors entries = Tensor::unwrapNamed(info[0], "stateDict");
  bool strict = toBool(info[1], "strict");
  LoadReport report = withModelLock(env, [&] { return fcn::loadStateDict(*module, entries, strict); });
  auto out = Napi::Object::New(env);
  out.Set("missingKeys", fromStrings(env, report.missingKeys));
  out.Set("unexpectedKeys", fromStrings(env, report.unexpectedKeys));
  return out;
}

Napi::Value Module::train(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  bool mode = toBool(info[0], "mode");
  withModelLock(info.Env(), [&] { module->train(mode); });
  return info.Env().Undefined();
}

Napi::Value Module::isTraining(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  return Napi::Boolean::New(info.Env(), module->is_training());
}

Napi::Value Module::to(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  Napi::Env env = info.Env();
  if (info[0].IsString()) {
    std::string spec = info[0].As<Napi::String>().Utf8Value();
    if (spec == "float32" || spec == "float64") {
      at::ScalarType dtype = toDtype(info[0]);
      withModelLock(env, [&] { module->to(dtype); });
      return env.Undefined();
    }
  }
  c10::Device device = toDevice(info[0]);
  withModelLock(env, [&] { module->to(device); });
  return env.Undefined();
}

Napi::Value Module::zeroGrad(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  withModelLock(info.Env(), [&] { module->zero_grad(true); });
  return info.Env().Undefined();
}

Napi::Value Module::addModule(const Napi::CallbackInfo& info) {
  std::shared_ptr<torch::nn::Module> module = held(info.Env());
  Napi::Env env = info.Env();
  std::string name = toString(info[0], "name");
  auto child = unwrap(info[1], "module");
  auto* sequential = dynamic_cast<Sequential*>(module.get());
  if (sequential == nullptr) {
    throw Napi::TypeError::New(env, "addModule: only a Sequential takes new modules, this is a " + kindName(*module));
  }
  withModelLock(env, [&] { sequential->append(name, child); });
  return env.Undefined();
}

}  // namespace fcn
