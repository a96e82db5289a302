// Heavy work runs off the event loop on one dedicated thread per process. libtorch starts an
// OpenMP team for every thread that enters a parallel region, so a pool of calling threads
// would oversubscribe the cores; one thread keeps one team, sized by torch.setNumThreads.
#pragma once

#include <napi.h>

#include <functional>
#include <mutex>

namespace fcn {

/// What a job hands back: run on the JS thread to build the promise's value.
using Settle = std::function<Napi::Value(Napi::Env)>;

/// Queues work on the torch thread and returns a promise settled with what its Settle
/// returns, or rejected with a JS Error carrying the message of whatever work threw.
/// The caller's grad mode is carried over to the job.
Napi::Promise runAsync(Napi::Env env, std::function<Settle()> work);

/// Held by every job while it runs on the torch thread, and taken by the synchronous calls
/// that run or change a model (forward, loadStateDict, to, train, zeroGrad), so that no model
/// is ever used by two threads at once: such a call made while a job runs waits for it.
std::unique_lock<std::mutex> lockModels();

}  // namespace fcn
