// The process-wide autocast choice and its per-forward scope (see autocast.h).
#include "core/autocast.h"

#include <ATen/autocast_mode.h>
#include <ATen/cpu/Utils.h>

#include <atomic>
#include <stdexcept>

#include "core/backends.h"

namespace fcn::autocast {

namespace {

constexpr int kOff = -1;
constexpr int kNoOverride = -2;
thread_local int overridden = kNoOverride;
std::atomic<int> cpuDtype{kOff};
std::atomic<int> cudaDtype{kOff};

std::atomic<int>* slotFor(c10::DeviceType deviceType) {
  if (deviceType == c10::DeviceType::CPU) return &cpuDtype;
  if (deviceType == c10::DeviceType::CUDA) return &cudaDtype;
  return nullptr;
}

}  // namespace

std::optional<at::ScalarType> dtypeFor(c10::DeviceType deviceType) {
  auto* slot = slotFor(deviceType);
  if (!slot) return std::nullopt;
  int value = overridden != kNoOverride ? overridden : slot->load();
  if (value == kOff) return std::nullopt;
  return static_cast<at::ScalarType>(value);
}

namespace {
const std::unordered_map<std::string, c10::IValue>& cpuCapabilities() {
  static const auto capabilities = at::cpu::get_cpu_capabilities();
  return capabilities;
}
}  // namespace

bool cpuFlag(const std::string& name) {
  auto it = cpuCapabilities().find(name);
  return it != cpuCapabilities().end() && it->second.isBool() && it->second.toBool();
}

std::string cpuName() {
  auto it = cpuCapabilities().find("cpu_name");
  return it != cpuCapabilities().end() && it->second.isString() ? it->second.toStringRef() : std::string();
}

bool cpuHasBfloat16Units() {
  static const bool has = cpuFlag("avx512_bf16") || cpuFlag("amx_bf16");
  return has;
}

std::optional<at::ScalarType> effectiveDtype(c10::DeviceType deviceType) {
  auto dtype = dtypeFor(deviceType);
  if (dtype && deviceType == c10::DeviceType::CPU && !cpuHasBfloat16Units() && !backends::emulatedBfloat16) {
    return std::nullopt;
  }
  return dtype;
}

Override::Override(std::optional<at::ScalarType> dtype) : previous_(overridden) {
  if (dtype && *dtype != at::kBFloat16) throw std::invalid_argument("precision: expected float32 or bfloat16");
  overridden = dtype ? static_cast<int>(*dtype) : kOff;
}

Override::~Override() { overridden = previous_; }

void setDtype(c10::DeviceType deviceType, std::optional<at::ScalarType> dtype) {
  auto* slot = slotFor(deviceType);
  if (!slot) throw std::invalid_argument("autocast: expected the device type 'cpu' or 'cuda'");
  if (dtype && *dtype != at::kBFloat16) throw std::invalid_argument("autocast: expected the dtype 'bfloat16' or null");
  slot->store(dtype ? static_cast<int>(*dtype) : kOff);
}

Scope::Scope(const c10::Device& device) : type_(device.type()) {
  auto dtype = effectiveDtype(type_);
  if (!dtype) return;
  wasEnabled_ = at::autocast::is_autocast_enabled(type_);
  previousDtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, *dtype);
  at::autocast::increment_nesting();
  active_ = true;
}

Scope::~Scope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, wasEnabled_);
  at::autocast::set_autocast_dtype(type_, previousDtype_);
}

}  // namespace fcn::autocast
