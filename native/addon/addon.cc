// The addon's entry point: registers every binding on the exports object of each JS
// environment that loads it (context-aware, so worker_threads may load it too).
#include <napi.h>

#include <memory>

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/torch_thread.h"
#include "core/cpu_allocator.h"
#include "core/device.h"

namespace fcn {

Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  // Node-API owns the instance data from here and deletes it when the environment ends.
  env.SetInstanceData(std::make_unique<AddonData>().release());
  // NNPACK refuses this hardware and warns on every convolution; oneDNN serves instead.
  at::globalContext().setUserEnabledNNPACK(false);
  installCachingCpuAllocator();
  initTorchThread(env, exports);
  initTensorClass(env, exports);
  initTensorCreation(env, exports);
  initTensorOps(env, exports);
  initModuleClass(env, exports);
  initLayers(env, exports);
  initResNet(env, exports);
  initMobileNet(env, exports);
  initSegmentation(env, exports);
  initFcnSkip(env, exports);
  initInit(env, exports);
  initOnnx(env, exports);
  initFunctional(env, exports);
  initOptimizerClass(env, exports);
  initTrainerClass(env, exports);
  initProcessGroupClass(env, exports);
  initPredict(env, exports);
  initInt8Model(env, exports);
  initSerialization(env, exports);
  initVoc(env, exports);
  initBackends(env, exports);
  exports.Set("torchVersion", TORCH_VERSION);
  exports.Set("cudaBuild", cudaBuilt());
  return exports;
}

}  // namespace fcn

namespace {
Napi::Object init(Napi::Env env, Napi::Object exports) { return fcn::initAddon(env, exports); }
}  // namespace

NODE_API_MODULE(fcn_torch, init)
