// Worker threads kept between kernel calls (leaky_tanh.cc includes this file;
// rflo.kernels builds it with the kernel, and a change here rebuilds it).
//
// A kernel call spreads an ensemble's networks over threads.  A thread
// started per call began running 86 us after it was started (median; 490 us
// at the 90th percentile) on this project's benchmark machine, a virtual one,
// against 1.2 ms of work per thread for an ensemble of 64 networks of 50 units
// trained offline; kept workers took that ensemble from 23.5-24.5 to
// 20.4-20.6 us per network-trial.  Between calls the workers spin for
// kSpinMicros (the gap between two trials' calls is shorter), then sleep on a
// condition variable.
//
// One call at a time holds them: a call that finds them busy (two kernel
// calls that XLA runs side by side) starts threads of its own, as before.  A
// forked child starts a pool of its own (its parent's workers are not in it).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rflo_workers {

// How long a worker spins for the next call before it sleeps.
constexpr int64_t kSpinMicros = 300;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class Pool {
 public:
  // Runs fn(k) for k = 0 .. count-1 on the calling thread and `extra` workers;
  // false, having run nothing, where another call holds the pool.
  bool run(int64_t count, int64_t extra, const std::function<void(int64_t)>& fn) {
    if (extra >= kMaxExtra) return false;
    std::unique_lock<std::mutex> held(busy_, std::try_to_lock);
    if (!held.owns_lock()) return false;
    while (started_ < extra) start_worker();
    job_ = &fn;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    // the call's number and the workers it needs in one word, published after
    // the fields above: a worker that sees the word sees them
    const uint64_t call = ((state_.load() >> kExtraBits) + 1) << kExtraBits | uint64_t(extra);
    {
      std::lock_guard<std::mutex> lock(sleep_);
      state_.store(call, std::memory_order_release);
    }
    wake_.notify_all();
    work();
    while (done_.load(std::memory_order_acquire) < extra) relax();
    return true;
  }

 private:
  static constexpr int kExtraBits = 20;
  static constexpr int64_t kMaxExtra = int64_t(1) << kExtraBits;

  void work() {
    for (int64_t k = next_++; k < count_; k = next_++) (*job_)(k);
  }

  void start_worker() {
    const int64_t index = started_++;
    const uint64_t seen = state_.load();  // the call before the one that starts it
    // detached, and the pool is never destroyed (pool()): nothing to join at exit
    std::thread([this, index, seen] { loop(index, seen); }).detach();
  }

  void loop(int64_t index, uint64_t seen) {
    for (;;) {
      uint64_t now = state_.load(std::memory_order_acquire);
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int spins = 0; now == seen; now = state_.load(std::memory_order_acquire)) {
        relax();
        if (++spins % 256 == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lock(sleep_);
          wake_.wait(lock, [&] { return state_.load() != seen; });
        }
      }
      seen = now;
      // a call that needs this worker waits for it, so none is missed
      if (index < int64_t(now & (uint64_t(kMaxExtra) - 1))) {
        work();
        done_.fetch_add(1, std::memory_order_release);
      }
    }
  }

  std::mutex busy_, sleep_;
  std::condition_variable wake_;
  std::atomic<uint64_t> state_{0};  // call number << kExtraBits | workers it needs
  std::atomic<int64_t> next_{0}, done_{0};
  int64_t started_ = 0;  // workers started (under busy_)
  // written by the caller before state_, read by the workers after it
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t count_ = 0;
};

// This process's pool, made on first use and never destroyed (its workers
// wait on it until the process exits).
inline Pool& pool() {
  static std::mutex making;
  static Pool* made = nullptr;
  static pid_t owner = 0;
  std::lock_guard<std::mutex> lock(making);
  if (made == nullptr || owner != getpid()) {  // first use, or a forked child
    made = new Pool();
    owner = getpid();
  }
  return *made;
}

// Runs fn(k) for k = 0 .. count-1 on up to `threads` threads (the caller's
// among them): each k is one thread's work, so results do not depend on the
// thread count.
template <typename F>
void for_each(int64_t count, int64_t threads, F&& fn) {
  threads = std::max<int64_t>(1, std::min(threads, count));
  if (threads == 1) {
    for (int64_t k = 0; k < count; ++k) fn(k);
    return;
  }
  const std::function<void(int64_t)> job = fn;
  if (pool().run(count, threads - 1, job)) return;
  std::atomic<int64_t> next{0};  // the pool is busy: threads of this call's own
  auto work = [&]() {
    for (int64_t k = next++; k < count; k = next++) fn(k);
  };
  std::vector<std::thread> own;
  for (int64_t t = 1; t < threads; ++t) own.emplace_back(work);
  work();
  for (auto& t : own) t.join();
}

}  // namespace rflo_workers
