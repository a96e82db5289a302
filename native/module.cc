#include "module.h"

#include <map>
#include <sstream>

#include "backends.h"
#include "common.h"
#include "sequential.h"
#include "subpixel.h"
#include "tensor.h"
#include "tensor_data.h"
#include "torch_thread.h"

namespace fcn {

namespace {

template <typename Impl, typename Fn>
bool visit(torch::nn::Module& m, Fn&& fn) {
  if (auto* impl = dynamic_cast<Impl*>(&m)) {
    fn(*impl);
    return true;
  }
  return false;
}

/// PyTorch's state_dict order: a module's own parameters, then its own buffers, then its
/// children's entries, depth first.
void collectState(const torch::nn::Module& m, const std::string& prefix, NamedTensors& out) {
  for (const auto& p : m.named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : m.named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& c : m.named_children()) collectState(*c.value(), prefix + c.key() + ".", out);
}

std::string joinNames(const std::vector<std::string>& names) {
  std::ostringstream out;
  for (size_t i = 0; i < names.size() && i < 12; ++i) out << (i ? ", " : "") << names[i];
  if (names.size() > 12) out << ", ... (" << names.size() - 12 << " more)";
  return out.str();
}

std::string shapeString(const at::Tensor& t) { return "[" + c10::Join(", ", t.sizes()) + "]"; }

}  // namespace

std::string kindOf(const torch::nn::Module& m) {
  auto& mm = const_cast<torch::nn::Module&>(m);
  if (auto* layer = dynamic_cast<Layer*>(&mm)) return layer->kind();
  if (dynamic_cast<torch::nn::Conv2dImpl*>(&mm)) return "Conv2d";
  if (dynamic_cast<torch::nn::ConvTranspose2dImpl*>(&mm)) return "ConvTranspose2d";
  if (dynamic_cast<torch::nn::BatchNorm2dImpl*>(&mm)) return "BatchNorm2d";
  if (dynamic_cast<torch::nn::ReLUImpl*>(&mm)) return "ReLU";
  if (dynamic_cast<torch::nn::MaxPool2dImpl*>(&mm)) return "MaxPool2d";
  if (dynamic_cast<torch::nn::AdaptiveAvgPool2dImpl*>(&mm)) return "AdaptiveAvgPool2d";
  if (dynamic_cast<torch::nn::FlattenImpl*>(&mm)) return "Flatten";
  if (dynamic_cast<torch::nn::LinearImpl*>(&mm)) return "Linear";
  return "Module";
}

at::Tensor forwardModule(torch::nn::Module& m, const at::Tensor& x) {
  at::Tensor y;
  auto run = [&](auto& impl) { y = impl.forward(x); };
  if (auto* layer = dynamic_cast<Layer*>(&m)) return layer->forward(x);
  if (auto* up = dynamic_cast<torch::nn::ConvTranspose2dImpl*>(&m); up && subpixelFits(up->options, x, up->weight)) {
    std::optional<at::Tensor> bias;
    if (up->bias.defined()) bias = up->bias;
    return subpixelTransposedConv(x, up->weight, bias, up->options.stride()->at(0),
                                  std::get<torch::ExpandingArray<2>>(up->options.padding())->at(0));
  }
  if (visit<torch::nn::Conv2dImpl>(m, run) || visit<torch::nn::ConvTranspose2dImpl>(m, run) ||
      visit<torch::nn::BatchNorm2dImpl>(m, run) || visit<torch::nn::ReLUImpl>(m, run) ||
      visit<torch::nn::MaxPool2dImpl>(m, run) || visit<torch::nn::AdaptiveAvgPool2dImpl>(m, run) ||
      visit<torch::nn::FlattenImpl>(m, run) || visit<torch::nn::LinearImpl>(m, run)) {
    return y;
  }
  throw std::invalid_argument("module " + m.name() + " has no forward");
}

void copyState(const torch::nn::Module& src, torch::nn::Module& dst, const std::optional<torch::Device>& device) {
  if (device) dst.to(*device);
  at::NoGradGuard noGrad;
  auto copyAll = [&](const auto& from, auto to) {
    for (const auto& item : from) {
      at::Tensor* target = to.find(item.key());
      if (target == nullptr) throw std::logic_error("clone of " + kindOf(src) + " lacks '" + item.key() + "'");
      target->copy_(item.value());
      target->set_requires_grad(item.value().requires_grad());
    }
  };
  copyAll(src.named_parameters(true), dst.named_parameters(true));
  copyAll(src.named_buffers(true), dst.named_buffers(true));
  dst.train(src.is_training());
}

void useChannelsLast(torch::nn::Module& m) {
  if (!backends::channelsLast) return;
  at::NoGradGuard noGrad;
  for (auto& p : m.parameters(true)) {
    if (p.dim() == 4 && p.device().is_cpu() && !p.is_contiguous(at::MemoryFormat::ChannelsLast)) {
      p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
}

at::Tensor modelInput(torch::nn::Module& m, const at::Tensor& x) {
  if (!backends::channelsLast || x.dim() != 4 || !x.device().is_cpu()) return x;
  auto params = m.parameters(true);
  bool channelsLast = !params.empty() && params[0].dim() == 4 && !params[0].is_contiguous() &&
                      params[0].is_contiguous(at::MemoryFormat::ChannelsLast);
  return channelsLast ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

void Module::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeModule",
                                   {
                                       InstanceAccessor<&Module::kind>("kind"),
                                       InstanceMethod<&Module::forward>("forward"),
                                       InstanceMethod<&Module::forwardAsync>("forwardAsync"),
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

Napi::Object Module::wrap(Napi::Env env, std::shared_ptr<torch::nn::Module> module) {
  return addonData(env).moduleClass.New({Napi::External<std::shared_ptr<torch::nn::Module>>::New(env, &module)});
}

std::shared_ptr<torch::nn::Module> Module::unwrap(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).moduleClass.Value())) {
    throwType(env, what, "a Module", v);
  }
  return Unwrap(v.As<Napi::Object>())->module_;
}

Napi::Value Module::kind(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kindOf(*module_)); }

Napi::Value Module::forward(const Napi::CallbackInfo& info) {
  at::Tensor x = Tensor::unwrap(info[0], "input");
  return guard(info.Env(), [&] {
    auto lock = lockModels();
    useChannelsLast(*module_);
    return Tensor::wrap(info.Env(), forwardModule(*module_, modelInput(*module_, x)));
  });
}

Napi::Value Module::forwardAsync(const Napi::CallbackInfo& info) {
  at::Tensor x = Tensor::unwrap(info[0], "input");
  return runAsync(info.Env(), [module = module_, x]() -> Settle {
    useChannelsLast(*module);
    at::Tensor y = forwardModule(*module, modelInput(*module, x));
    return [y](Napi::Env env) { return Tensor::wrap(env, y); };
  });
}

Napi::Value Module::namedChildren(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto children = module_->named_children();
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
  bool recurse = info.Length() == 0 || info[0].IsUndefined() || toBool(info[0], "recurse");
  NamedTensors entries;
  for (const auto& p : module_->named_parameters(recurse)) entries.emplace_back(p.key(), p.value());
  return Tensor::wrapNamed(info.Env(), entries);
}

Napi::Value Module::namedBuffers(const Napi::CallbackInfo& info) {
  bool recurse = info.Length() == 0 || info[0].IsUndefined() || toBool(info[0], "recurse");
  NamedTensors entries;
  for (const auto& b : module_->named_buffers(recurse)) entries.emplace_back(b.key(), b.value());
  return Tensor::wrapNamed(info.Env(), entries);
}

Napi::Value Module::stateDict(const Napi::CallbackInfo& info) {
  NamedTensors entries;
  collectState(*module_, "", entries);
  return Tensor::wrapNamed(info.Env(), entries);
}

/// loadStateDict([[name, tensor], ...], strict): copies matching entries in place; reports
/// missing and unexpected keys (an error when strict) and always refuses shape mismatches
/// before anything is copied.
Napi::Value Module::loadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NamedTensors pairs = Tensor::unwrapNamed(info[0], "stateDict");
  bool strict = toBool(info[1], "strict");
  std::map<std::string, at::Tensor> given;
  std::vector<std::string> givenOrder;
  for (const auto& [name, tensor] : pairs) {
    given[name] = tensor;
    givenOrder.push_back(name);
  }
  NamedTensors own;
  collectState(*module_, "", own);
  std::vector<std::string> missing, unexpected, mismatched;
  std::map<std::string, bool> known;
  for (const auto& [name, tensor] : own) {
    known[name] = true;
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(name + " (given " + shapeString(it->second) + ", model has " + shapeString(tensor) + ")");
    }
  }
  for (const auto& name : givenOrder) {
    if (!known.count(name)) unexpected.push_back(name);
  }
  std::ostringstream problems;
  if (!mismatched.empty()) problems << "shape mismatch for " << joinNames(mismatched) << ". ";
  if (strict && !missing.empty()) problems << "missing keys: " << joinNames(missing) << ". ";
  if (strict && !unexpected.empty()) problems << "unexpected keys: " << joinNames(unexpected) << ". ";
  if (!problems.str().empty()) {
    throw Napi::Error::New(env, "loadStateDict: " + problems.str() + "Nothing was loaded.");
  }
  guard(env, [&] {
    auto lock = lockModels();
    at::NoGradGuard noGrad;
    for (auto& [name, tensor] : own) {
      auto it = given.find(name);
      if (it != given.end()) tensor.copy_(it->second);
    }
  });
  auto out = Napi::Object::New(env);
  auto toArray = [&](const std::vector<std::string>& names) {
    auto a = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
    return a;
  };
  out.Set("missingKeys", toArray(missing));
  out.Set("unexpectedKeys", toArray(unexpected));
  return out;
}

Napi::Value Module::train(const Napi::CallbackInfo& info) {
  bool mode = toBool(info[0], "mode");
  auto lock = lockModels();
  module_->train(mode);
  return info.Env().Undefined();
}

Napi::Value Module::isTraining(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), module_->is_training());
}

Napi::Value Module::to(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info[0].IsString()) {
    std::string spec = info[0].As<Napi::String>().Utf8Value();
    if (spec == "float32" || spec == "float64") {
      at::ScalarType dtype = toDtype(info[0]);
      guard(env, [&] {
        auto lock = lockModels();
        module_->to(dtype);
      });
      return env.Undefined();
    }
  }
  c10::Device device = toDevice(info[0]);
  guard(env, [&] {
    auto lock = lockModels();
    module_->to(device);
  });
  return env.Undefined();
}

Napi::Value Module::zeroGrad(const Napi::CallbackInfo& info) {
  guard(info.Env(), [&] {
    auto lock = lockModels();
    module_->zero_grad(true);
  });
  return info.Env().Undefined();
}

Napi::Value Module::addModule(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = toString(info[0], "name");
  auto child = unwrap(info[1], "module");
  auto* sequential = dynamic_cast<Sequential*>(module_.get());
  if (sequential == nullptr) {
    throw Napi::TypeError::New(env, "addModule: only a Sequential takes new modules, this is a " + kindOf(*module_));
  }
  guard(env, [&] { sequential->append(name, child); });
  return env.Undefined();
}

}  // namespace fcn
