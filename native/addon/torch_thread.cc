#include "addon/torch_thread.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <thread>

#include "core/cpu_allocator.h"
#include "core/describe.h"

namespace fcn {

/// A job's way back to its promise. Only raw Node-API handles: when the environment is gone
/// a completion is dropped without touching them.
struct Completion {
  napi_deferred deferred = nullptr;
  napi_ref callerError = nullptr;  // an Error made when the call started: the caller's stack
  Settle settle;
  std::string error;
  bool failed = false;
};

/// One JS environment's link: the thread-safe function through which completions reach its
/// JS thread, and whether the environment is still there to receive them.
class EnvLink {
 public:
  explicit EnvLink(napi_env env) {
    napi_value name;
    napi_create_string_utf8(env, "fcn-torch", NAPI_AUTO_LENGTH, &name);
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr,
                                                                   this, &EnvLink::deliver, &tsfn_));
    napi_unref_threadsafe_function(env, tsfn_);  // an idle addon keeps no process alive
  }

  /// JS thread: a job of this environment was queued / settled (a pending job keeps the
  /// event loop alive, as a pending I/O request does).
  void started(napi_env env) {
    if (pending_++ == 0) napi_ref_threadsafe_function(env, tsfn_);
  }
  void settled(napi_env env) {
    if (--pending_ == 0) napi_unref_threadsafe_function(env, tsfn_);
  }

  /// Torch thread: hands c to the JS thread, or drops it when the environment has ended.
  void finish(std::unique_ptr<Completion> c) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return;
    if (napi_call_threadsafe_function(tsfn_, c.get(), napi_tsfn_nonblocking) == napi_ok) c.release();
  }

  /// JS thread, as the environment ends: no completion is delivered after this.
  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_ = false;
    }
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
  }

 private:
  static void deliver(napi_env env, napi_value, void* context, void* data);

  std::mutex mutex_;
  bool open_ = true;
  napi_threadsafe_function tsfn_ = nullptr;
  int pending_ = 0;  // JS thread only
};

namespace {

std::atomic<int> intraOpThreads{0};  // 0 until torch.setNumThreads: libtorch's default

struct Job {
  std::shared_ptr<EnvLink> link;
  std::function<Settle()> work;
  std::unique_ptr<Completion> completion;
  bool gradEnabled = true;
};

std::mutex& modelMutex() {
  static std::mutex mutex;
  return mutex;
}

std::atomic<bool> threadStarted{false};

/// How long the torch thread waits without work before giving cached memory back.
constexpr std::chrono::seconds kIdleRelease{2};

class TorchThread {
 public:
  static TorchThread& instance() {
    static TorchThread thread;
    threadStarted = true;
    return thread;
  }

  void post(Job job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

  /// Drops the queued jobs of link (its environment is ending).
  void cancel(const EnvLink* link) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(jobs_, [&](const Job& job) { return job.link.get() == link; });
  }

  /// At process exit, from the JS 'exit' event, before Node shuts its platform and libuv
  /// down and the process's static objects (libtorch's, the allocator's, ours) are
  /// destroyed. A job running or queued cannot be stopped, and would go on touching all of
  /// them (its tensors freed, its result handed to a thread-safe function whose loop is
  /// gone): the process ends here, at once, with its code. An idle thread is stopped and
  /// joined, so that nothing of ours runs during that teardown.
  void stopForExit(int code) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (busy_ || !jobs_.empty()) std::_Exit(code);
      stopping_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
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
    bool released = true;
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        bool ready = ready_.wait_for(lock, kIdleRelease, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        if (!ready) {
          // Idle: the caching allocator's blocks go back to the system until work comes again.
          if (!released) {
            lock.unlock();
            releaseCachedCpuMemory();
            released = true;
          }
          continue;
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
      }
      released = false;
      run(job);
      job.link->finish(std::move(job.completion));
      job = Job{};  // its tensors freed while still busy
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
    }
  }

  static void run(Job& job) {
    Completion& c = *job.completion;
    try {
      auto lock = lockModels();
      int threads = intraOpThreads.load();
      if (threads > 0 && at::get_num_threads() != threads) at::set_num_threads(threads);
      at::AutoGradMode mode(job.gradEnabled);
      c.settle = job.work();
    } catch (const std::exception& e) {
      c.failed = true;
      c.error = messageOf(e);
    } catch (...) {
      c.failed = true;
      c.error = "unknown native error";
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool busy_ = false;  // a job is running or being put away (guarded by mutex_)
  std::thread thread_;
};

/// An Error with message and the stack of callerError (the JS frames that started the job).
napi_value errorWithCallerStack(napi_env env, const std::string& message, napi_ref callerError) {
  Napi::Error error = Napi::Error::New(env, message);
  napi_value caller;
  if (callerError != nullptr && napi_get_reference_value(env, callerError, &caller) == napi_ok) {
    Napi::Value stack = Napi::Object(env, caller).Get("stack");
    if (stack.IsString()) {
      std::string frames = stack.As<Napi::String>().Utf8Value();
      size_t firstFrame = frames.find('\n');
      error.Value().Set("stack",
                        "Error: " + message + (firstFrame == std::string::npos ? "" : frames.substr(firstFrame)));
    }
  }
  return error.Value();
}

/// The cleanup hook of an environment: its queued jobs are dropped, and nothing is
/// delivered to it any more.
void closeLink(void* arg) {
  std::unique_ptr<std::shared_ptr<EnvLink>> held(static_cast<std::shared_ptr<EnvLink>*>(arg));
  TorchThread::instance().cancel(held->get());
  (*held)->close();
}

/// The link of env, kept by the addon's per-environment data.
std::shared_ptr<EnvLink>& linkOf(Napi::Env env) { return addonData(env).torchLink; }

}  // namespace

void EnvLink::deliver(napi_env env, napi_value, void* context, void* data) {
  std::unique_ptr<Completion> c(static_cast<Completion*>(data));
  if (env == nullptr) return;  // the environment is ending: nothing may be touched
  static_cast<EnvLink*>(context)->settled(env);
  Napi::Env js(env);
  Napi::HandleScope scope(js);
  napi_value outcome = nullptr;
  bool rejected = c->failed;
  if (rejected) {
    outcome = errorWithCallerStack(env, c->error, c->callerError);
  } else {
    try {
      outcome = c->settle(js);
    } catch (const Napi::Error& e) {
      rejected = true;
      outcome = e.Value();
    } catch (const std::exception& e) {
      rejected = true;
      outcome = errorWithCallerStack(env, messageOf(e), c->callerError);
    }
  }
  if (rejected) {
    napi_reject_deferred(env, c->deferred, outcome);
  } else {
    napi_resolve_deferred(env, c->deferred, outcome);
  }
  if (c->callerError != nullptr) napi_delete_reference(env, c->callerError);
}

std::unique_lock<std::mutex> lockModels() { return std::unique_lock<std::mutex>(modelMutex()); }

Settle settleUndefined() {
  return [](Napi::Env env) { return env.Undefined(); };
}

void setIntraOpThreads(int threads) {
  at::set_num_threads(threads);
  intraOpThreads.store(threads);
}

Napi::Promise runAsync(Napi::Env env, std::function<Settle()> work) {
  auto completion = std::make_unique<Completion>();
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &completion->deferred, &promise), Napi::Promise());
  napi_value caller = Napi::Error::New(env, "").Value();
  napi_create_reference(env, caller, 1, &completion->callerError);
  std::shared_ptr<EnvLink>& link = linkOf(env);
  link->started(env);
  TorchThread::instance().post(Job{link, std::move(work), std::move(completion), at::GradMode::is_enabled()});
  return Napi::Promise(env, promise);
}

void initTorchThread(Napi::Env env, Napi::Object exports) {
  auto link = std::make_shared<EnvLink>(env);
  linkOf(env) = link;
  // Added after the thread-safe function, so it runs before Node closes that function.
  auto hook = std::make_unique<std::shared_ptr<EnvLink>>(link);
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, &closeLink, hook.get()));
  hook.release();  // owned by the hook from here
  exports.Set("prepareExit", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                int code = static_cast<int>(toInt(info[0], "code"));
                if (threadStarted) TorchThread::instance().stopForExit(code);
                return info.Env().Undefined();
              }));
}

}  // namespace fcn
