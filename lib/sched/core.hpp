// The scheduler shared by a runtime's workers: the workers themselves, the inject queue, the
// idle set, the owned-task list, the reactor and the options.
//
// Lifetime: reference-counted. The Runtime holds one reference and every task header holds
// one, because a waker may reach the scheduler through its task on any thread at any time
// (even while the runtime shuts down); the memory goes when the last of them does. Workers
// take task references in batches and return them in batches (retain_for_spawn), so the
// count is at least the true number while a worker runs, and exact once it has exited.
// Thread safety: every member may be used from any thread unless it says otherwise.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "io/reactor.hpp"
#include "runtime/blocking_pool.hpp"
#include "sched/idle.hpp"
#include "sched/inject.hpp"
#include "sched/stall_monitor.hpp"
#include "sched/worker.hpp"
#include "task/header.hpp"
#include "task/owned_tasks.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

class Worker;

class Core {
 public:
  explicit Core(RuntimeOptions options);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  /// Starts the worker threads. Called once, by the Runtime.
  void start();

  void retain(std::size_t count = 1) noexcept;
  /// Deletes the core when these were the last references.
  void release(std::size_t count = 1) noexcept;
  /// A task's reference, taken at spawn (where the spawn is also counted, for the metrics)
  /// and dropped when its header is freed. On this core's own workers they come from and go
  /// to a per-worker batch (see Worker::take_core_reference), so spawning and freeing tasks
  /// does not bounce the count's cache line between cores.
  void retain_for_spawn() noexcept;
  void release_for_task() noexcept;

  /// Queues a task that holds its notified reference. From one of this core's workers the
  /// task goes to that worker: a wake or spawn into its LIFO slot, a yield (or a task woken
  /// while it ran) to the back of its queue. From anywhere else, into the inject queue.
  void schedule(TaskHeader* task, bool is_yield) noexcept;

  /// This core's worker running on this thread, or null.
  [[nodiscard]] Worker* own_worker() const noexcept;

  /// Wakes a parked worker if none is searching (after work was published with seq_cst).
  void notify_parked() noexcept;
  /// The same for work a worker pushed to its own, previously empty, queue with a release
  /// store (pushes into a non-empty queue need no check; see Worker::schedule_local).
  void notify_parked_local() noexcept;
  /// For the last searcher before it sleeps: wakes a worker if any queue has work.
  void notify_if_work_pending() noexcept;

  /// See Runtime::shutdown. Not from a worker.
  void shutdown();
  [[nodiscard]] bool is_shutdown() const noexcept {
    // acquire: pairs with the release store in shutdown().
    return m_shutdown.load(std::memory_order_acquire);
  }

  /// Metrics: a task finished on this core (counted per worker on the core's own workers, in
  /// a shared counter elsewhere; spawns are counted by retain_for_spawn).
  void note_finished() noexcept;
  [[nodiscard]] RuntimeMetrics metrics() const;

  /// Hands an exception that nobody will observe to the user's handler.
  void report_exception(std::exception_ptr error) noexcept;

  [[nodiscard]] std::size_t worker_count() const noexcept { return m_workers.size(); }
  [[nodiscard]] Worker& worker(std::size_t index) noexcept { return *m_workers[index]; }
  [[nodiscard]] Inject& inject() noexcept { return m_inject; }
  [[nodiscard]] Idle& idle() noexcept { return m_idle; }
  [[nodiscard]] OwnedTasks& owned() noexcept { return m_owned; }
  [[nodiscard]] Reactor& reactor() noexcept { return *m_reactor; }
  [[nodiscard]] const RuntimeOptions& options() const noexcept { return m_options; }
  [[nodiscard]] std::shared_ptr<BlockingPool> blocking_pool() const noexcept { return m_blocking; }

 private:
  /// schedule() off this core's workers, or during shutdown.
  void schedule_from_outside(TaskHeader* task) noexcept;
  void schedule_remote(TaskHeader* task) noexcept;
  void drain_inject() noexcept;

  RuntimeOptions m_options;
  /// m_options.enable_metrics, beside the hot fields.
  const bool m_metrics;
  /// Holds one reference; sockets and timers hold the others (the reactor may outlive us).
  Reactor* m_reactor;
  /// Shared with the pool's threads, which may outlive the core (see blocking_pool.hpp).
  std::shared_ptr<BlockingPool> m_blocking;
  Inject m_inject;
  Idle m_idle;
  OwnedTasks m_owned;
  std::vector<std::unique_ptr<Worker>> m_workers;
  std::vector<std::thread> m_threads;
  std::unique_ptr<StallMonitor> m_stall_monitor;  // null when the detector is off
  std::mutex m_shutdown_mutex;
  // Written by every spawn and wake from outside the workers, on a line of their own:
  // - m_refs: the reference count in its low 32 bits and, with metrics on, the spawns off this
  //   core's workers in its high 32 bits (wrapping), so that a remote spawn is counted by the
  //   same read-modify-write that takes its reference. References stay below 2^32 (one per
  //   live task, plus a batch per worker), so the count never carries into the spawns.
  // - m_remote_finished: completions off this core's workers (metrics).
  static constexpr std::uint64_t k_ref_mask = 0xffff'ffffULL;
  static constexpr std::uint64_t k_remote_spawn_unit = 1ULL << 32;
  alignas(64) std::atomic<std::uint64_t> m_refs{1};
  std::atomic<std::uint64_t> m_remote_finished{0};
  // Read by every worker on every tick and by every schedule(): a line of its own, or each
  // remote spawn's writes above would take it from the workers' caches (it shared m_refs'
  // line, and spawn_many_remote paid for it).
  alignas(64) std::atomic<bool> m_shutdown{false};
  /// Set once shutdown has drained everything; a late remote wake then drains after itself.
  std::atomic<bool> m_shutdown_done{false};
};

// The per-task paths are inline: spawn, wake and free each take them once or twice.

inline Worker* Core::own_worker() const noexcept {
  Worker* worker = current_worker();
  return worker != nullptr && &worker->core() == this ? worker : nullptr;
}

inline void Worker::take_core_reference() noexcept {
  // The spawn count is also the position in the batch: a spawn at a multiple of the batch
  // size has used up the last batch and takes the next. So the metrics' spawn count costs
  // nothing beyond the batching itself.
  const std::uint64_t spawned = m_stats.spawned.get();
  if (spawned % k_core_reference_batch == 0) m_core.retain(k_core_reference_batch);
  m_stats.spawned.set(spawned + 1);
}

inline void Worker::return_core_reference() noexcept {
  if (++m_core_debt == k_core_reference_batch) {
    m_core_debt = 0;
    m_core.release(k_core_reference_batch);
  }
}

inline void Core::retain_for_spawn() noexcept {
  if (Worker* worker = own_worker()) {
    worker->take_core_reference();  // counts the spawn too
  } else {
    // relaxed: as in retain(); the spawn count is for snapshots only.
    m_refs.fetch_add(m_metrics ? k_remote_spawn_unit + 1 : 1, std::memory_order_relaxed);
  }
}

inline void Core::release_for_task() noexcept {
  if (Worker* worker = own_worker()) {
    worker->return_core_reference();
  } else {
    release();
  }
}

inline void Core::schedule(TaskHeader* task, bool is_yield) noexcept {
  Worker* worker = own_worker();
  if (worker == nullptr || is_shutdown()) {
    schedule_from_outside(task);
    return;
  }
  worker->schedule_local(task, is_yield);
}

inline void Core::note_finished() noexcept {
  if (!m_metrics) return;
  if (Worker* worker = own_worker()) {
    worker->stats().finished.add();
  } else {
    // relaxed: a count for snapshots only.
    m_remote_finished.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace weft::detail
