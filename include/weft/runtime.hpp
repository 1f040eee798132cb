// weft::Runtime: the work-stealing scheduler, and weft::spawn.
//
// A Runtime owns one worker thread per core (by default). Each worker runs tasks from its own
// queue, steals from the others when idle, and parks, using no CPU, when there is nothing to
// do. Tasks spawned or woken from outside the workers go through a shared inject queue.
//
// Thread safety: every member function may be called from any thread, except that block_on
// and shutdown must not be called from one of the runtime's own workers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include "weft/source_location.hpp"

#include "weft/blocking.hpp"
#include "weft/detail/raw_task.hpp"
#include "weft/join_handle.hpp"
#include "weft/metrics.hpp"
#include "weft/task.hpp"

namespace weft {

struct RuntimeOptions {
  /// Worker threads; 0 means std::thread::hardware_concurrency().
  std::size_t workers = 0;
  /// Workers are named PREFIX-N (truncated to the 15 characters Linux allows).
  std::string thread_name_prefix = "weft-worker";
  /// Run on each worker thread as it starts and before it exits. Exceptions are reported to
  /// on_unhandled_exception and otherwise ignored.
  std::function<void()> on_thread_start{};
  std::function<void()> on_thread_stop{};
  /// Receives exceptions that escape detached tasks (and hooks). The default prints one line
  /// on stderr. It runs on whichever thread dropped the result; it must not throw.
  std::function<void(std::exception_ptr)> on_unhandled_exception{};

  /// The blocking pool (weft/blocking.hpp): at most this many threads, started on demand...
  std::size_t max_blocking_threads = 64;
  /// ...at most this many calls waiting for one beyond those running...
  std::size_t blocking_queue_capacity = 256;
  /// ...and a thread idle this long goes away.
  std::chrono::nanoseconds blocking_keep_alive = std::chrono::seconds(10);
  /// How long shutdown waits for running blocking calls.
  std::chrono::nanoseconds blocking_shutdown_timeout = std::chrono::seconds(10);
  /// Receives the blocking calls still running at that deadline. The default prints them on
  /// stderr, one line each with where the call was spawned. It must not throw.
  std::function<void(const std::vector<BlockingJobReport>&)> on_blocking_shutdown_timeout{};

  /// Collect the counters and histograms of Runtime::metrics() (weft/metrics.hpp).
  bool enable_metrics = true;
  /// The histograms sample one wake in this many on each thread: the wake is stamped, and the
  /// poll it leads to is timed, for three clock reads in all. A power of two; 1 times every
  /// poll. At the default the clock reads cost an 11 ns yield about 0.9%, within the noise
  /// of measuring it (docs/design.md, "Metrics and the stall detector").
  std::uint32_t metrics_sample_interval = 4096;
  /// A poll running longer than this is reported once through on_stall; zero turns the
  /// stall detector off. See lib/sched/stall_monitor.hpp for its precision.
  std::chrono::nanoseconds stall_threshold = std::chrono::milliseconds(100);
  /// Receives stall reports, on the detector's own thread. The default prints one line on
  /// stderr naming the task's spawn site and its worker. It must not throw or block for long.
  std::function<void(const StallReport&)> on_stall{};
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  /// Shuts down (see shutdown()).
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Runs `task` on the runtime and waits for it on this thread; returns its value or
  /// rethrows its exception.
  template <class T>
  T block_on(Task<T> task, SourceLocation where = SourceLocation::current()) {
    detail::check_may_block("weft::Runtime::block_on");
    return spawn(std::move(task), where).join();
  }

  /// Starts `task` on the runtime. Works from any thread. `where` is reported if one of the
  /// task's polls stalls its worker.
  template <class T>
  JoinHandle<T> spawn(Task<T> task, SourceLocation where = SourceLocation::current()) {
    auto handle = task.release();
    return JoinHandle<T>(detail::spawn_raw(m_core, handle, handle.promise(), where));
  }

  /// Runs `function` on this runtime's blocking pool; see weft/blocking.hpp. Any thread.
  template <class F>
  BlockingFuture<detail::BlockingResult<F>> spawn_blocking(
      F&& function, SourceLocation where = SourceLocation::current()) {
    return std::move(*detail::make_blocking(m_core, std::forward<F>(function), true, where));
  }
  template <class F>
  std::optional<BlockingFuture<detail::BlockingResult<F>>> try_spawn_blocking(
      F&& function, SourceLocation where = SourceLocation::current()) {
    return detail::make_blocking(m_core, std::forward<F>(function), false, where);
  }

  /// Stops the workers, then cancels and destroys every task that has not finished (running
  /// the destructors of its locals), including tasks spawned or woken by those destructors.
  /// Join handles held elsewhere then report TaskCancelled. Then it drops queued blocking
  /// calls and waits up to blocking_shutdown_timeout for running ones. Idempotent.
  void shutdown();

  [[nodiscard]] std::size_t workers() const noexcept;

  /// A snapshot of the scheduler's counters (weft/metrics.hpp). Any thread, any time.
  [[nodiscard]] RuntimeMetrics metrics() const;

 private:
  detail::Core* m_core;
};

/// Starts `task` on the runtime of the calling worker. Throws std::logic_error when called
/// from a thread that is not one of a runtime's workers; use Runtime::spawn there.
template <class T>
JoinHandle<T> spawn(Task<T> task, SourceLocation where = SourceLocation::current()) {
  auto handle = task.release();
  return JoinHandle<T>(detail::spawn_raw(nullptr, handle, handle.promise(), where));
}

}  // namespace weft
