// Post-training static int8 inference on the CPU (opt-in): the ResNet body at the start of a
// Sequential (the chapter's FCN-32s: conv1 bn1 relu maxpool layer1..layer4) runs as int8
// convolutions through libtorch's quantized ops (fbgemm or oneDNN, whichever the quantized
// engine is), with each BatchNorm folded into its convolution, weights per output channel
// (symmetric int8), activations uint8 at scales calibrated on sample inputs, and ReLUs and the
// blocks' residual adds fused; the rest of the model (the 1x1 classifier and the transposed
// convolution) runs in float32 on the dequantized features. It follows PyTorch's 'x86'
// configuration (activations in 7 bits, reduce_range: AVX2's 8-bit pair products saturate
// otherwise) but with min/max ranges where its default observes histograms.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>

namespace fcn {

class OnnxGraph;

/// An int8 copy of a float model's ResNet body with the model's other layers: calibrate it
/// (observe), then quantize it (freeze), then it runs as a module (forward, predict). It
/// refuses to run once the float model has changed since the body was folded (a training
/// step, loadStateDict, to(), a new layer), also during calibration: it would mix the old
/// body with the new layers.
class Int8Model : public torch::nn::Module {
 public:
  /// Plans the int8 body of source, a CPU float32 Sequential; throws std::invalid_argument
  /// naming what is not supported. The layers after the body are this module's children
  /// (shared with source, as in PyTorch).
  explicit Int8Model(std::shared_ptr<torch::nn::Module> source);
  ~Int8Model() override;

  /// One calibration batch, normalised float32 images [N, 3, H, W]: the body runs in float32
  /// (BatchNorm folded) and the range of each activation it will quantize grows to hold it.
  void observe(const at::Tensor& images);
  /// Quantizes: activation scales from the observed ranges, weights folded, quantized and
  /// packed for the quantized engine. Observing is over after it.
  void freeze();
  /// How many calibration batches were observed.
  int64_t observed() const;
  bool frozen() const;

  /// Logits of the quantized model for normalised float32 images [N, 3, H, W] on the CPU.
  at::Tensor forward(const at::Tensor& input);
  /// Copying, and moving off the CPU or float32, are refused: the int8 body is a CPU
  /// snapshot, and the float layers are the float model's own.
  std::shared_ptr<torch::nn::Module> clone(const std::optional<torch::Device>& device) const override;
  void to(torch::Device device, torch::Dtype dtype, bool nonBlocking = false) override;
  void to(torch::Dtype dtype, bool nonBlocking = false) override;
  void to(torch::Device device, bool nonBlocking = false) override;
  /// Throws, saying when, if the float model is no longer what the body was folded from.
  void checkSource(const char* when) const;
  /// The quantized model as ONNX's QDQ form (models/onnx_graph.h): each activation the int8
  /// body quantizes goes through QuantizeLinear and DequantizeLinear at its scale and zero
  /// point, the convolutions read int8 weights (per output channel) and int32 biases through
  /// DequantizeLinear, so that a runtime (ONNX Runtime) runs them as int8 convolutions; the
  /// float layers after the body follow as they export. Returns the output's name.
  std::string exportOnnx(OnnxGraph& graph, const std::string& input, const std::string& path) const;

 private:
  struct Plan;
  std::shared_ptr<torch::nn::Module> source_;
  std::unique_ptr<Plan> plan_;
};

}  // namespace fcn
