// The process-wide autocast choice and its per-forward scope (see autocast.h).
#include "core/autocast.h"

#include <ATen/autocast_mode.h>

#include <atomic>
#include <stdexcept>

namespace fcn::autocast {

namespace {

constexpr int kOff = -1;
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
  int value = slot ? slot->load() : kOff;
  if (value == kOff) return std::nullopt;
  return static_cast<at::ScalarType>(value);
}

void setDtype(c10::DeviceType deviceType, std::optional<at::ScalarType> dtype) {
  auto* slot = slotFor(deviceType);
  if (!slot) throw std::invalid_argument("autocast: expected the device type 'cpu' or 'cuda'");
  if (dtype && *dtype != at::kBFloat16) throw std::invalid_argument("autocast: expected the dtype 'bfloat16' or null");
  slot->store(dtype ? static_cast<int>(*dtype) : kOff);
}

Scope::Scope(const c10::Device& device) : type_(device.type()) {
  auto dtype = dtypeFor(type_);
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
