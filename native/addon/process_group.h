// NativeProcessGroup: a JS handle over a c10d process group (distributed/process_group.h);
// connecting and every collective run on the torch thread.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "distributed/process_group.h"

namespace fcn {

class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  /// The connected group of a NativeProcessGroup; throws a TypeError for anything else.
  static std::shared_ptr<Group> unwrap(const Napi::Value& v, const std::string& what);

  explicit ProcessGroup(const Napi::CallbackInfo& info);

 private:
  Napi::Value connect(const Napi::CallbackInfo& info);
  Napi::Value allReduce(const Napi::CallbackInfo& info);
  Napi::Value broadcast(const Napi::CallbackInfo& info);
  Napi::Value broadcastModule(const Napi::CallbackInfo& info);
  Napi::Value barrier(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);

  /// Filled by connect's job; shared with the jobs that use it.
  std::shared_ptr<Group> group_ = std::make_shared<Group>();
};

}  // namespace fcn
