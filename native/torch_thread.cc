#include "torch_thread.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <torch/torch.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "common.h"

namespace fcn {

namespace {

class TorchThread {
 public:
  static TorchThread& instance() {
    static TorchThread thread;
    return thread;
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

  ~TorchThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      jobs_.clear();
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  TorchThread(const TorchThread&) = delete;
  TorchThread& operator=(const TorchThread&) = delete;

 private:
  TorchThread()
      : thread_([this] {
          // A lower priority than the JS thread's, inherited by the OpenMP team this thread
          // starts: when cores are short, the event loop still runs on time and the
          // computation takes the rest.
          setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 5);
          loop();
        }) {}

  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

struct Outcome {
  Settle settle;
  std::string error;
  bool failed = false;
};

std::mutex& modelMutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

std::unique_lock<std::mutex> lockModels() { return std::unique_lock<std::mutex>(modelMutex()); }

Napi::Promise runAsync(Napi::Env env, std::function<Settle()> work) {
  auto deferred = Napi::Promise::Deferred::New(env);
  auto tsfn =
      Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "fcn-torch", 0, 1);
  bool gradEnabled = at::GradMode::is_enabled();
  TorchThread::instance().post([deferred, tsfn, work = std::move(work), gradEnabled]() mutable {
    auto outcome = std::make_shared<Outcome>();
    try {
      auto lock = lockModels();
      at::AutoGradMode mode(gradEnabled);
      outcome->settle = work();
    } catch (const std::exception& e) {
      outcome->failed = true;
      outcome->error = messageOf(e);
    } catch (...) {
      outcome->failed = true;
      outcome->error = "unknown native error";
    }
    tsfn.BlockingCall([deferred, outcome](Napi::Env env, Napi::Function) {
      if (outcome->failed) {
        deferred.Reject(Napi::Error::New(env, outcome->error).Value());
        return;
      }
      try {
        deferred.Resolve(outcome->settle(env));
      } catch (const Napi::Error& e) {
        deferred.Reject(e.Value());
      } catch (const std::exception& e) {
        deferred.Reject(Napi::Error::New(env, messageOf(e)).Value());
      }
    });
    tsfn.Release();
  });
  return deferred.Promise();
}

}  // namespace fcn
