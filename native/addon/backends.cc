// torch.backends: the speed-up switches of core/backends.h as JS properties, and the
// caching CPU allocator's counters.
#include "core/backends.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "core/cpu_allocator.h"

namespace fcn {

namespace {

template <std::atomic<bool>& flag>
void property(Napi::Env env, Napi::Object target, const char* name) {
  auto get = Napi::Function::New(
      env, [](const Napi::CallbackInfo& info) -> Napi::Value { return Napi::Boolean::New(info.Env(), flag.load()); });
  auto set = Napi::Function::New(env, [name](const Napi::CallbackInfo& info) -> Napi::Value {
    flag.store(toBool(info[0], name));
    return info.Env().Undefined();
  });
  auto descriptor = Napi::Object::New(env);
  descriptor.Set("get", get);
  descriptor.Set("set", set);
  descriptor.Set("enumerable", true);
  env.Global()
      .Get("Object")
      .As<Napi::Object>()
      .Get("defineProperty")
      .As<Napi::Function>()
      .Call({target, Napi::String::New(env, name), descriptor});
}

}  // namespace

void initBackends(Napi::Env env, Napi::Object exports) {
  auto object = Napi::Object::New(env);
  property<backends::subpixelUpsampling>(env, object, "subpixelUpsampling");
  property<backends::channelsLast>(env, object, "channelsLast");
  property<backends::cachingCpuAllocator>(env, object, "cachingCpuAllocator");
  object.Set("emptyCpuCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               releaseCachedCpuMemory();
               return info.Env().Undefined();
             }));
  object.Set("cachedCpuBytes", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
               return Napi::Number::New(info.Env(), static_cast<double>(cachedCpuBytes()));
             }));
  exports.Set("backends", object);
}

}  // namespace fcn
