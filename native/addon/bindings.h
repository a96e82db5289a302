// The binding files' entry points: each registers its concept on the exports object of a JS
// environment (addon.cc calls them all). One file per concept, paired with its TypeScript
// face in src/ (named beside each).
#pragma once

#include <napi.h>

namespace fcn {

void initTensorClass(Napi::Env env, Napi::Object exports);        // tensor.cc: NativeTensor (src/tensor.ts)
void initTensorCreation(Napi::Env env, Napi::Object exports);     // tensor_creation.cc (src/torch.ts)
void initTensorOps(Napi::Env env, Napi::Object exports);          // tensor_ops.cc: ops.* (src/tensor.ts)
void initModuleClass(Napi::Env env, Napi::Object exports);        // module.cc: NativeModule (src/nn/module.ts)
void initLayers(Napi::Env env, Napi::Object exports);             // layers.cc: createModule (src/nn/layers.ts)
void initResNet(Napi::Env env, Napi::Object exports);             // resnet.cc (src/nn/resnet.ts)
void initMobileNet(Napi::Env env, Napi::Object exports);          // mobilenet.cc (src/nn/mobilenet.ts)
void initSegmentation(Napi::Env env, Napi::Object exports);       // segmentation.cc (src/models/segmentation.ts)
void initFcnSkip(Napi::Env env, Napi::Object exports);            // fcn_skip.cc (src/fcn.ts)
void initInit(Napi::Env env, Napi::Object exports);               // init.cc (src/init.ts)
void initOnnx(Napi::Env env, Napi::Object exports);               // onnx_export.cc (src/onnx/)
void initFunctional(Napi::Env env, Napi::Object exports);         // functional.cc (src/nn/functional.ts)
void initOptimizerClass(Napi::Env env, Napi::Object exports);     // optim.cc: NativeOptimizer (src/optim.ts)
void initTrainerClass(Napi::Env env, Napi::Object exports);       // trainer.cc: NativeTrainer (src/train.ts)
void initProcessGroupClass(Napi::Env env, Napi::Object exports);  // process_group.cc (src/distributed.ts)
void initPredict(Napi::Env env, Napi::Object exports);            // predict.cc (src/predict.ts)
void initInt8Model(Napi::Env env, Napi::Object exports);          // int8_model.cc (src/int8.ts)
void initSerialization(Napi::Env env, Napi::Object exports);      // serialization.cc (src/serialization.ts)
void initVoc(Napi::Env env, Napi::Object exports);                // voc.cc (src/voc/)
void initBackends(Napi::Env env, Napi::Object exports);           // backends.cc (torch.backends, src/torch.ts)

}  // namespace fcn
