// The layers the FCN is made of, built from a TypeScript options object that mirrors
// PyTorch's keyword arguments (the TypeScript side has validated and defaulted them).
#include "layers.h"

#include "common.h"
#include "module.h"
#include "sequential.h"

namespace fcn {

namespace {

class Options {
 public:
  explicit Options(Napi::Object obj) : obj_(obj) {}
  int64_t integer(const char* key) const { return toInt(obj_.Get(key), key); }
  double number(const char* key) const { return toDouble(obj_.Get(key), key); }
  bool flag(const char* key) const { return toBool(obj_.Get(key), key); }
  std::string text(const char* key) const { return toString(obj_.Get(key), key); }
  bool has(const char* key) const { return obj_.Has(key) && !obj_.Get(key).IsUndefined(); }
  torch::ExpandingArray<2> pair(const char* key) const {
    auto values = toIntList(obj_.Get(key), key);
    if (values.size() != 2) throwType(obj_.Env(), key, "two integers [h, w]", obj_.Get(key));
    return torch::ExpandingArray<2>({values[0], values[1]});
  }

 private:
  Napi::Object obj_;
};

torch::nn::detail::conv_padding_mode_t paddingMode(const std::string& mode) {
  if (mode == "zeros") return torch::kZeros;
  if (mode == "reflect") return torch::kReflect;
  if (mode == "replicate") return torch::kReplicate;
  if (mode == "circular") return torch::kCircular;
  throw std::invalid_argument("paddingMode must be zeros, reflect, replicate or circular, got '" + mode + "'");
}

std::shared_ptr<torch::nn::Module> conv2d(const Options& o) {
  torch::nn::Conv2dOptions options(o.integer("inChannels"), o.integer("outChannels"), o.pair("kernelSize"));
  options.stride(o.pair("stride")).dilation(o.pair("dilation")).groups(o.integer("groups")).bias(o.flag("bias"));
  options.padding_mode(paddingMode(o.text("paddingMode")));
  if (o.has("paddingString")) {
    std::string p = o.text("paddingString");
    if (p == "same") {
      options.padding(torch::kSame);
    } else if (p == "valid") {
      options.padding(torch::kValid);
    } else {
      throw std::invalid_argument("padding must be a number, [h, w], 'same' or 'valid', got '" + p + "'");
    }
  } else {
    options.padding(o.pair("padding"));
  }
  return torch::nn::Conv2d(options).ptr();
}

std::shared_ptr<torch::nn::Module> convTranspose2d(const Options& o) {
  torch::nn::ConvTranspose2dOptions options(o.integer("inChannels"), o.integer("outChannels"), o.pair("kernelSize"));
  options.stride(o.pair("stride")).padding(o.pair("padding")).output_padding(o.pair("outputPadding"));
  options.dilation(o.pair("dilation")).groups(o.integer("groups")).bias(o.flag("bias"));
  if (o.text("paddingMode") != "zeros") {
    throw std::invalid_argument("ConvTranspose2d only supports paddingMode 'zeros', as in PyTorch");
  }
  return torch::nn::ConvTranspose2d(options).ptr();
}

std::shared_ptr<torch::nn::Module> batchNorm2d(const Options& o) {
  torch::nn::BatchNorm2dOptions options(o.integer("numFeatures"));
  options.eps(o.number("eps")).momentum(o.number("momentum")).affine(o.flag("affine"));
  options.track_running_stats(o.flag("trackRunningStats"));
  return torch::nn::BatchNorm2d(options).ptr();
}

std::shared_ptr<torch::nn::Module> maxPool2d(const Options& o) {
  torch::nn::MaxPool2dOptions options(o.pair("kernelSize"));
  options.stride(o.pair("stride")).padding(o.pair("padding")).dilation(o.pair("dilation"));
  options.ceil_mode(o.flag("ceilMode"));
  return torch::nn::MaxPool2d(options).ptr();
}

std::shared_ptr<torch::nn::Module> create(const std::string& kind, const Options& o) {
  if (kind == "Conv2d") return conv2d(o);
  if (kind == "ConvTranspose2d") return convTranspose2d(o);
  if (kind == "BatchNorm2d") return batchNorm2d(o);
  if (kind == "ReLU") return torch::nn::ReLU().ptr();
  if (kind == "MaxPool2d") return maxPool2d(o);
  if (kind == "AdaptiveAvgPool2d") {
    auto size = o.pair("outputSize");
    return torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({(*size)[0], (*size)[1]})).ptr();
  }
  if (kind == "Flatten") {
    return torch::nn::Flatten(torch::nn::FlattenOptions().start_dim(o.integer("startDim")).end_dim(o.integer("endDim")))
        .ptr();
  }
  if (kind == "Linear") {
    return torch::nn::Linear(
               torch::nn::LinearOptions(o.integer("inFeatures"), o.integer("outFeatures")).bias(o.flag("bias")))
        .ptr();
  }
  if (kind == "Sequential") return std::make_shared<Sequential>();
  throw std::invalid_argument("unknown module kind '" + kind + "'");
}

Napi::Value createModule(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = toString(info[0], "kind");
  if (!info[1].IsObject()) throwType(env, "options", "an object", info[1]);
  Options options(info[1].As<Napi::Object>());
  return guard(env, [&] { return Module::wrap(env, create(kind, options)); });
}

}  // namespace

void initLayers(Napi::Env env, Napi::Object exports) {
  exports.Set("createModule", Napi::Function::New<createModule>(env));
}

}  // namespace fcn
