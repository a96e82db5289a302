#include "distributed/process_group.h"

#include <c10/core/DeviceGuard.h>
#include <c10/util/Logging.h>

#include <map>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/describe.h"
#include "distributed/gloo_backend.h"
#ifdef FCN_TORCH_NCCL
#include "distributed/nccl_backend.h"
#endif

namespace fcn {

namespace {

/// c10d logs every failed connection attempt with a C++ backtrace; the JS error says it once.
class QuietLogs {
 public:
  QuietLogs() : saved_(FLAGS_caffe2_log_level) { FLAGS_caffe2_log_level = 3; }
  ~QuietLogs() { FLAGS_caffe2_log_level = saved_; }
  QuietLogs(const QuietLogs&) = delete;
  QuietLogs& operator=(const QuietLogs&) = delete;

 private:
  int saved_;
};

std::string where(const ConnectOptions& o) { return o.masterAddr + ":" + std::to_string(o.port); }

}  // namespace

void connectGroup(Group& group, const ConnectOptions& o) {
  QuietLogs quiet;
  c10d::TCPStoreOptions storeOptions;
  storeOptions.port = static_cast<std::uint16_t>(o.port);
  storeOptions.isServer = o.hostsStore;
  storeOptions.numWorkers = static_cast<size_t>(o.size);
  storeOptions.waitWorkers = true;
  storeOptions.timeout = o.timeout;
  c10::intrusive_ptr<c10d::Store> store;
  std::string role = "rank " + std::to_string(o.rank) + " of " + std::to_string(o.size);
  try {
    store = c10::make_intrusive<c10d::TCPStore>(o.masterAddr, storeOptions);
  } catch (const std::exception& e) {
    throw std::runtime_error((o.hostsStore
                                  ? role + " could not host the rendezvous at " + where(o) +
                                        " (is the port free, and is " + o.masterAddr + " an address of this machine?)"
                                  : role + " could not join the rendezvous at " + where(o) + " within " +
                                        std::to_string(o.timeout.count()) + " ms (is rank 0 running there?)") +
                             ": " + messageOf(e));
  }
  c10::intrusive_ptr<c10d::Backend> backend;
  try {
    if (o.backend == "gloo") {
      backend = makeGlooBackend(store, o.rank, o.size, o.timeout, o.hostname, o.interface);
    } else {
#ifdef FCN_TORCH_NCCL
      c10::DeviceGuard deviceGuard(o.device);
      backend = makeNcclBackend(store, o.rank, o.size, o.timeout);
#else
      throw std::invalid_argument("this build of fcn-torch has no NCCL (it is not a CUDA build); use 'gloo'");
#endif
    }
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error(role + " could not connect its " + o.backend + " backend to the others: " + messageOf(e));
  }
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, o.rank, o.size);
  auto type = o.backend == "gloo" ? c10d::ProcessGroup::BackendType::GLOO : c10d::ProcessGroup::BackendType::NCCL;
  pg->setBackend(o.device.type(), type, backend);
  pg->setDefaultBackend(type);
  group.pg = pg;
  group.rank = o.rank;
  group.size = o.size;
  group.device = o.device;
  group.backend = o.backend;
}

void waitFor(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(what) +
                             " failed: a peer process stopped, or the network between the processes failed (" +
                             messageOf(e) + ")");
  }
}

namespace {

/// The tensors (of one device and dtype) one after the other in one 1-d tensor.
at::Tensor flatten(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.reshape(-1));
  return at::cat(parts);
}

/// Copies flat (as flatten made it) back into the tensors.
void unflatten(const at::Tensor& flat, std::vector<at::Tensor>& tensors) {
  int64_t offset = 0;
  for (auto& t : tensors) {
    t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

/// Runs op on the tensors flattened into one, and writes the result back.
template <typename Op>
void flatCollective(std::vector<at::Tensor>& tensors, Op&& op) {
  if (tensors.empty()) return;
  if (tensors.size() == 1 && tensors[0].is_contiguous()) {
    at::Tensor flat = tensors[0].view(-1);  // in place: no copies
    op(flat);
    return;
  }
  at::Tensor buffer = flatten(tensors);
  op(buffer);
  unflatten(buffer, tensors);
}

void checkOnGroupDevice(const Group& group, const at::Tensor& t, const std::string& what) {
  if (t.device().type() != group.device.type()) {
    throw std::invalid_argument(what + " is on " + t.device().str() + " but this process group's " + group.backend +
                                " backend works on " + group.device.str() + " tensors");
  }
}

c10d::ReduceOp toReduceOp(const std::string& op) {
  if (op == "sum" || op == "avg") return c10d::ReduceOp::SUM;  // avg: divided afterwards (Gloo has no AVG)
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  throw std::invalid_argument("op: expected 'sum', 'avg', 'max', 'min' or 'product', got '" + op + "'");
}

}  // namespace

void broadcastState(Group& group, torch::nn::Module& model, bool parameters, bool buffers, int root) {
  at::NoGradGuard noGrad;
  std::map<at::ScalarType, std::vector<at::Tensor>> byType;
  if (parameters) {
    for (auto& p : model.parameters(true)) byType[p.scalar_type()].push_back(p);
  }
  if (buffers) {
    for (auto& b : model.buffers(true)) byType[b.scalar_type()].push_back(b);
  }
  for (auto& [type, tensors] : byType) {
    for (auto& t : tensors) checkOnGroupDevice(group, t, "the model");
    flatCollective(tensors, [&](at::Tensor& flat) {
      std::vector<at::Tensor> one{flat};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      waitFor(group.pg->broadcast(one, options), "the broadcast of the model's state");
    });
  }
}

void checkReduceOp(const std::string& op) { toReduceOp(op); }

void allReduce(Group& group, const at::Tensor& tensor, const std::string& op) {
  c10d::AllreduceOptions options;
  options.reduceOp = toReduceOp(op);
  checkOnGroupDevice(group, tensor, "tensor");
  std::vector<at::Tensor> tensors{tensor};
  flatCollective(tensors, [&](at::Tensor& flat) {
    std::vector<at::Tensor> one{flat};
    waitFor(group.pg->allreduce(one, options), "all-reduce");
    if (op == "avg") flat.div_(group.size);
  });
}

void broadcast(Group& group, const at::Tensor& tensor, int root) {
  checkOnGroupDevice(group, tensor, "tensor");
  std::vector<at::Tensor> tensors{tensor};
  flatCollective(tensors, [&](at::Tensor& flat) {
    std::vector<at::Tensor> one{flat};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    waitFor(group.pg->broadcast(one, options), "broadcast");
  });
}

void barrier(Group& group) {
  c10d::BarrierOptions options;
  if (group.device.is_cuda()) options.device = group.device;
  waitFor(group.pg->barrier(options), "barrier");
}

void shutdown(Group& group) {
  try {
    group.pg->shutdown();  // what destroy_process_group does; NCCL warns when it is skipped
  } catch (const std::exception&) {
    // A group whose peers are gone cannot shut down cleanly; dropping it is all that is left.
  }
  group.pg.reset();
}

}  // namespace fcn
