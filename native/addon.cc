// The addon's entry point: registers every binding on the exports object of each JS
// environment that loads it (context-aware, so worker_threads may load it too).
#include <napi.h>

#include <memory>

#include "backends.h"
#include "common.h"
#include "cpu_allocator.h"
#include "fcn.h"
#include "functional.h"
#include "init.h"
#include "layers.h"
#include "module.h"
#include "optim.h"
#include "predict.h"
#include "process_group.h"
#include "resnet.h"
#include "serialization.h"
#include "tensor.h"
#include "tensor_creation.h"
#include "tensor_ops.h"
#include "trainer.h"
#include "voc.h"

namespace fcn {

Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  // Node-API owns the instance data from here and deletes it when the environment ends.
  env.SetInstanceData(std::make_unique<AddonData>().release());
  // NNPACK refuses this hardware and warns on every convolution; oneDNN serves instead.
  at::globalContext().setUserEnabledNNPACK(false);
  installCachingCpuAllocator();
  Tensor::Init(env, exports);
  Module::Init(env, exports);
  Optimizer::Init(env, exports);
  initTensorCreation(env, exports);
  initTensorOps(env, exports);
  initLayers(env, exports);
  initResNet(env, exports);
  initFcn(env, exports);
  Trainer::Init(env, exports);
  ProcessGroup::Init(env, exports);
  initPredict(env, exports);
  backends::init(env, exports);
  initInit(env, exports);
  initFunctional(env, exports);
  initSerialization(env, exports);
  initVoc(env, exports);
  exports.Set("torchVersion", TORCH_VERSION);
  exports.Set("cudaBuild", cudaBuilt());
  return exports;
}

}  // namespace fcn

namespace {
Napi::Object init(Napi::Env env, Napi::Object exports) { return fcn::initAddon(env, exports); }
}  // namespace

NODE_API_MODULE(fcn_torch, init)
