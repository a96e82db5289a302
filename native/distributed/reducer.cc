#include "distributed/reducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>

namespace fcn {

namespace {

constexpr int64_t kBucketBytes = 25 << 20;  // DDP's default bucket_cap_mb

/// Tells the reducer that its parameter's gradient is accumulated, once per backward.
class ReadyHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  ReadyHook(GradientReducer* reducer, size_t param) : reducer_(reducer), param_(param) {}
  void operator()(const torch::autograd::Variable& /*tensor*/) override { reducer_->ready(param_); }
  const GradientReducer* reducer() const { return reducer_; }

 private:
  GradientReducer* reducer_;
  size_t param_;
};

}  // namespace

GradientReducer::GradientReducer(std::shared_ptr<Group> group, torch::nn::Module& model) : group_(std::move(group)) {
  for (auto& p : model.parameters(true)) {
    if (p.requires_grad()) params_.push_back(p);
  }
  bucketOf_.resize(params_.size());
  ready_.assign(params_.size(), 0);
  // Last parameters first (the backward makes their gradients first), same dtype per bucket.
  int64_t bytes = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const at::Tensor& p = params_[i];
    int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets_.empty() || bytes + size > kBucketBytes ||
        params_[buckets_.back().params.front()].scalar_type() != p.scalar_type()) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(i);
    bucketOf_[i] = buckets_.size() - 1;
    bytes += size;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::autograd::impl::set_post_acc_grad_hooks(params_[i], std::make_unique<ReadyHook>(this, i));
  }
}

GradientReducer::~GradientReducer() {
  for (auto& p : params_) {
    auto& hook = torch::autograd::impl::post_acc_grad_hooks(p);
    auto* ours = dynamic_cast<ReadyHook*>(hook.get());
    if (ours != nullptr && ours->reducer() == this) hook.reset();
  }
}

void GradientReducer::reset() {
  started_ = 0;
  std::fill(ready_.begin(), ready_.end(), 0);
  for (auto& bucket : buckets_) {
    bucket.readyCount = 0;
    bucket.work.reset();
  }
}

void GradientReducer::arm() {
  std::lock_guard<std::mutex> lock(mutex_);
  reset();
  armed_ = true;
}

void GradientReducer::ready(size_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || ready_[param] != 0) return;
  ready_[param] = 1;
  ++buckets_[bucketOf_[param]].readyCount;
  startReady();
}

void GradientReducer::startReady() {
  while (started_ < buckets_.size() && buckets_[started_].readyCount == buckets_[started_].params.size()) {
    start(buckets_[started_++]);
  }
}

void GradientReducer::start(Bucket& bucket) {
  at::NoGradGuard noGrad;
  const at::Tensor& first = params_[bucket.params.front()];
  int64_t total = 0;
  for (size_t i : bucket.params) total += params_[i].numel();
  if (!bucket.flat.defined() || bucket.flat.numel() != total || bucket.flat.device() != first.device() ||
      bucket.flat.scalar_type() != first.scalar_type()) {
    bucket.flat = at::empty({total}, first.options());
  }
  int64_t offset = 0;
  for (size_t i : bucket.params) {
    const at::Tensor& p = params_[i];
    at::Tensor slot = bucket.flat.narrow(0, offset, p.numel());
    if (p.grad().defined()) {
      slot.copy_(p.grad().reshape(-1));
    } else {
      slot.zero_();
    }
    offset += p.numel();
  }
  std::vector<at::Tensor> tensors{bucket.flat};
  bucket.work = group_->pg->allreduce(tensors);
}

double GradientReducer::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto began = std::chrono::steady_clock::now();
  if (!armed_) reset();  // nothing started: a backward that was not armed (an accumulation's end)
  armed_ = false;
  at::NoGradGuard noGrad;
  std::vector<float> usedHere;
  for (const auto& p : params_) usedHere.push_back(p.grad().defined() ? 1.0F : 0.0F);
  while (started_ < buckets_.size()) start(buckets_[started_++]);
  for (auto& bucket : buckets_) waitFor(bucket.work, "the all-reduce of the gradients");
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  // As DDP: a parameter that no rank used keeps no gradient (the optimizer then skips it).
  std::vector<at::Tensor> used{at::tensor(usedHere).to(group_->device)};
  waitFor(group_->pg->allreduce(used), "the all-reduce of the gradients");
  at::Tensor usedAnywhere = used[0].to(at::kCPU);
  const float* usedBy = usedAnywhere.const_data_ptr<float>();
  for (auto& bucket : buckets_) {
    bucket.flat.div_(group_->size);
    int64_t offset = 0;
    for (size_t i : bucket.params) {
      at::Tensor& p = params_[i];
      if (usedBy[i] == 0) {
        p.mutable_grad() = at::Tensor();
      } else {
        at::Tensor average = bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
        if (p.grad().defined()) {
          p.mutable_grad().copy_(average);
        } else {
          p.mutable_grad() = average.clone();
        }
      }
      offset += p.numel();
    }
  }
  reset();
  return waited;
}

}  // namespace fcn
