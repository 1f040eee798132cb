// The blocking pool behind weft::spawn_blocking (include/weft/blocking.hpp has the contract).
//
// Invariants
// - m_slots holds one permit per call that may be running or queued: max_threads plus
//   queue_capacity. A caller takes one before submitting; the pool gives it back after the
//   call has finished and been destroyed, or when it drops the call unrun. So the queue never
//   holds more than queue_capacity calls beyond those a thread is running.
// - m_queue, m_running, m_threads, m_idle and m_shutdown are guarded by m_mutex.
// - Threads are detached. Each holds a shared_ptr to the pool, so a thread still running a
//   call after shutdown's deadline (and after the runtime is gone) touches live memory.
//   m_threads drops, under m_mutex, as a thread's last use of the pool's state.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <vector>
#include "weft/source_location.hpp"

#include "weft/blocking.hpp"
#include "weft/sync/semaphore.hpp"

namespace weft::detail {

class BlockingPool : public std::enable_shared_from_this<BlockingPool> {
 public:
  struct Options {
    std::size_t max_threads;
    std::size_t queue_capacity;
    std::chrono::nanoseconds keep_alive;
  };
  struct Snapshot {
    std::size_t threads;
    std::size_t idle_threads;
    std::size_t queued;
    std::size_t running;
  };

  explicit BlockingPool(Options options);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  [[nodiscard]] Semaphore& slots() noexcept { return m_slots; }
  /// Any thread; see submit_blocking.
  void submit(std::unique_ptr<BlockingJob> job);
  [[nodiscard]] Snapshot snapshot();
  /// Refuses further calls, drops the queued ones, and waits up to `deadline` for the running
  /// ones. Returns those still running then. Idempotent. Called from one of the pool's own
  /// threads (a blocking call that shuts its runtime down), it does not wait for itself.
  std::vector<BlockingJobReport> shutdown(std::chrono::nanoseconds deadline);

 private:
  struct Running {
    SourceLocation spawned_at;
    std::chrono::steady_clock::time_point started;
  };

  void thread_main();
  /// Under m_mutex: starts a thread if none is idle and the cap allows. False if none could
  /// be started and none is left to take the queue.
  bool start_thread_locked(std::unique_lock<std::mutex>& lock);

  const Options m_options;
  Semaphore m_slots;
  std::mutex m_mutex;
  std::condition_variable m_work;      // queued work, or shutdown
  std::condition_variable m_finished;  // a thread left
  std::deque<std::unique_ptr<BlockingJob>> m_queue;
  std::list<Running> m_running;
  std::size_t m_threads = 0;
  std::size_t m_idle = 0;
  bool m_shutdown = false;
};

}  // namespace weft::detail
