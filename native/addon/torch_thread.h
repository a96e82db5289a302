// Heavy work runs off the event loop on one dedicated thread per process. libtorch starts an
// OpenMP team for every thread that enters a parallel region, so a pool of calling threads
// would oversubscribe the cores; one thread keeps one team, sized by torch.setNumThreads.
// Every JS environment (the main thread, each worker_thread) has its own link to that
// thread: finished jobs come back through it, and when the environment ends its queued
// jobs are dropped and a running one finishes without touching it.
#pragma once

#include <napi.h>

#include <functional>
#include <mutex>

#include "addon/js_interop.h"

namespace fcn {

/// What a job hands back: run on the JS thread to build the promise's value.
using Settle = std::function<Napi::Value(Napi::Env)>;

/// Queues work on the torch thread and returns a promise settled with what its Settle
/// returns, or rejected with a JS Error carrying the message of whatever work threw and the
/// stack of the JS code that made this call. The caller's grad mode is carried over.
Napi::Promise runAsync(Napi::Env env, std::function<Settle()> work);

/// A Settle that resolves with undefined.
Settle settleUndefined();

/// torch.setNumThreads: libtorch's intra-op thread count. OpenMP and MKL keep a count per
/// thread, so this sets the calling thread's and the torch thread takes it before its next
/// job (otherwise that thread kept the count of its first parallel region for good).
void setIntraOpThreads(int threads);

/// Held by every job while it runs on the torch thread, and taken by the synchronous calls
/// that run or change a model (forward, loadStateDict, to, train, zeroGrad, addModule,
/// optimizer steps), so that no model is ever used by two threads at once: such a call made
/// while a job runs waits for it.
std::unique_lock<std::mutex> lockModels();

/// Runs fn holding the model lock; C++ errors become JS errors.
template <typename Fn>
auto withModelLock(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  return guard(env, [&] {
    auto lock = lockModels();
    return fn();
  });
}

/// Opens this environment's link to the torch thread, and exports prepareExit(code): the
/// exit code to end the process with at once if a job is still running when it exits
/// (libtorch's static objects must not be destroyed under a running job).
void initTorchThread(Napi::Env env, Napi::Object exports);

}  // namespace fcn
