// Heavy work runs off the event loop on one dedicated thread per process. libtorch starts an
// OpenMP team for every thread that enters a parallel region, so a pool of calling threads
// would oversubscribe the cores; one thread keeps one team, sized by torch.setNumThreads.
#pragma once

#include <napi.h>

#include <functional>

namespace fcn {

/// What a job hands back: run on the JS thread to build the promise's value.
using Settle = std::function<Napi::Value(Napi::Env)>;

/// Queues work on the torch thread and returns a promise settled with what its Settle
/// returns, or rejected with a JS Error carrying the message of whatever work threw.
/// The caller's grad mode is carried over to the job.
Napi::Promise runAsync(Napi::Env env, std::function<Settle()> work);

}  // namespace fcn
