// resnet(block, layers, numClasses): torchvision's ResNets (models/resnet.h) as module
// handles: resnet18 is ('basic', [2, 2, 2, 2]), resnet50 ('bottleneck', [3, 4, 6, 3]),
// resnet101 ('bottleneck', [3, 4, 23, 3]).
#include "models/resnet.h"

#include "addon/bindings.h"
#include "addon/js_interop.h"
#include "addon/module.h"

namespace fcn {

namespace {
Napi::Value resnet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string block = toString(info[0], "block");
  auto layers = toIntList(info[1], "layers");
  ResNetConfig config;
  config.numClasses = toInt(info[2], "numClasses");
  if (block != "basic" && block != "bottleneck") throwType(env, "block", "'basic' or 'bottleneck'", info[0]);
  if (layers.size() != 4) throwType(env, "layers", "four block counts", info[1]);
  if (config.numClasses < 1) throw Napi::RangeError::New(env, "numClasses must be >= 1");
  config.block = block == "basic" ? ResNetConfig::Block::Basic : ResNetConfig::Block::Bottleneck;
  std::copy(layers.begin(), layers.end(), config.layers.begin());
  return guard(env, [&] { return Module::wrap(env, std::make_shared<ResNet>(config)); });
}
}  // namespace

void initResNet(Napi::Env env, Napi::Object exports) { exports.Set("resnet", Napi::Function::New<resnet>(env)); }

}  // namespace fcn
