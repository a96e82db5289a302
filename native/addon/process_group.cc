#include "addon/process_group.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"
#include "addon/tensor.h"
#include "addon/torch_thread.h"

namespace fcn {

void initProcessGroupClass(Napi::Env env, Napi::Object exports) { ProcessGroup::Init(env, exports); }

void ProcessGroup::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeProcessGroup",
                                   {
                                       InstanceMethod<&ProcessGroup::connect>("connect"),
                                       InstanceMethod<&ProcessGroup::allReduce>("allReduce"),
                                       InstanceMethod<&ProcessGroup::broadcast>("broadcast"),
                                       InstanceMethod<&ProcessGroup::broadcastModule>("broadcastModule"),
                                       InstanceMethod<&ProcessGroup::barrier>("barrier"),
                                       InstanceMethod<&ProcessGroup::close>("close"),
                                   });
  addonData(env).processGroupClass = Napi::Persistent(cls);
  exports.Set("NativeProcessGroup", cls);
}

std::shared_ptr<Group> ProcessGroup::unwrap(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).processGroupClass.Value())) {
    throwType(env, what, "a process group (initProcessGroup)", v);
  }
  std::shared_ptr<Group> group = Unwrap(v.As<Napi::Object>())->group_;
  if (!group->connected) {
    throw Napi::Error::New(env, what + ": the process group is not connected (closed, or connect() has not finished)");
  }
  return group;
}

ProcessGroup::ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {}

/// connect({rank, worldSize, hostsStore, masterAddr, masterPort, hostname, interface, timeoutMs, backend,
/// device}) -> Promise<void>: the rendezvous, then the backend's connections to every peer.
Napi::Value ProcessGroup::connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throwType(env, "options", "an object", info[0]);
  auto options = info[0].As<Napi::Object>();
  ConnectOptions o;
  o.rank = static_cast<int>(toInt(options.Get("rank"), "rank"));
  o.size = static_cast<int>(toInt(options.Get("worldSize"), "worldSize"));
  o.hostsStore = toBool(options.Get("hostsStore"), "hostsStore");
  o.port = static_cast<int>(toInt(options.Get("masterPort"), "masterPort"));
  o.masterAddr = fcn::toString(options.Get("masterAddr"), "masterAddr");
  o.hostname = fcn::toString(options.Get("hostname"), "hostname");
  o.interface = fcn::toString(options.Get("interface"), "interface");
  o.backend = fcn::toString(options.Get("backend"), "backend");
  o.timeout = std::chrono::milliseconds(toInt(options.Get("timeoutMs"), "timeoutMs"));
  o.device = toDevice(options.Get("device"));
  if (group_->connected) throw Napi::Error::New(env, "connect: this process group is already connected");
  return runAsync(env, [group = group_, o]() -> Settle {
    connectGroup(*group, o);
    return [group](Napi::Env env) -> Napi::Value {
      group->connected = true;
      return env.Undefined();
    };
  });
}

/// allReduce(tensor, op) -> Promise<void>: tensor (on the group's device) becomes the
/// reduction over all ranks, in place.
Napi::Value ProcessGroup::allReduce(const Napi::CallbackInfo& info) {
  auto group = unwrap(info.This(), "processGroup");
  at::Tensor tensor = Tensor::unwrap(info[0], "tensor");
  std::string op = fcn::toString(info[1], "op");
  guard(info.Env(), [&] { checkReduceOp(op); });
  return runAsync(info.Env(), [group, tensor, op]() -> Settle {
    fcn::allReduce(*group, tensor, op);
    return settleUndefined();
  });
}

/// broadcast(tensor, root) -> Promise<void>: root's tensor is copied into every rank's.
Napi::Value ProcessGroup::broadcast(const Napi::CallbackInfo& info) {
  auto group = unwrap(info.This(), "processGroup");
  at::Tensor tensor = Tensor::unwrap(info[0], "tensor");
  int root = static_cast<int>(toInt(info[1], "root"));
  return runAsync(info.Env(), [group, tensor, root]() -> Settle {
    fcn::broadcast(*group, tensor, root);
    return settleUndefined();
  });
}

/// broadcastModule(module, root) -> Promise<void>: root's parameters and buffers everywhere.
Napi::Value ProcessGroup::broadcastModule(const Napi::CallbackInfo& info) {
  auto group = unwrap(info.This(), "processGroup");
  auto module = Module::unwrap(info[0], "module");
  int root = static_cast<int>(toInt(info[1], "root"));
  return runAsync(info.Env(), [group, module, root]() -> Settle {
    broadcastState(*group, *module, true, true, root);
    return settleUndefined();
  });
}

/// barrier() -> Promise<void>: settles once every rank has called it.
Napi::Value ProcessGroup::barrier(const Napi::CallbackInfo& info) {
  auto group = unwrap(info.This(), "processGroup");
  return runAsync(info.Env(), [group]() -> Settle {
    fcn::barrier(*group);
    return settleUndefined();
  });
}

/// close() -> Promise<void>: after the jobs queued before it, drops the connections (a peer
/// still in a collective with this rank then fails instead of waiting).
Napi::Value ProcessGroup::close(const Napi::CallbackInfo& info) {
  bool wasConnected = group_->connected;
  group_->connected = false;
  return runAsync(info.Env(), [group = group_, wasConnected]() -> Settle {
    if (wasConnected) shutdown(*group);
    return settleUndefined();
  });
}

}  // namespace fcn
