// One worker thread: its run queue, LIFO slot, parker and loop.
//
// Invariants
// - The LIFO slot, the tick countdown, the searching flag, the core-reference batch and the inject
//   consumer token belong to the worker's thread; other threads touch only `queue()` (to steal) and
//   `parker()` (to unpark).
// - Before parking, the worker holds no task: its LIFO slot and queue are empty. Between
//   ticks the LIFO slot holds a task only when the LIFO cap left it there with the queue
//   empty; next_task() takes it first (after the periodic inject check).
// - A worker polls at most k_max_lifo_polls tasks in a row from its LIFO slot, and checks the
//   inject queue first every k_inject_interval ticks, so no queue starves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "sched/inject.hpp"
#include "sched/local_queue.hpp"
#include "sched/parker.hpp"
#include "sched/stats.hpp"
#include "weft/detail/tls_model.hpp"

namespace weft::detail {

class Core;
struct TaskHeader;

class Worker {
 public:
  static constexpr std::uint32_t k_queue_capacity = 256;
  static constexpr std::uint32_t k_max_lifo_polls = 3;
  static constexpr std::uint32_t k_inject_interval = 61;
  static constexpr std::size_t k_inject_batch = 64;
  static constexpr std::size_t k_core_reference_batch = 256;
  /// How long (in pause instructions, a few microseconds) a searcher that found nothing waits
  /// before its last look for work; see retry_before_park.
  static constexpr std::uint32_t k_pauses_before_retry = 64;
  /// One poll in this many is timed for the metrics' histograms, with the wakes it makes. A
  /// clock read costs about 26 ns on this virtual machine, and a sampled yield makes four
  /// (its poll, and the next poll its stamped wake leads to): at 1 in 256 that was 0.4 ns of
  /// a 20 ns yield_now, two thirds of what metrics cost it; at 1 in 1024 it is 0.1 ns. A busy
  /// worker still times a thousand or more polls a second.
  static constexpr std::uint32_t k_sample_interval = 1024;

  using Queue = LocalQueue<TaskHeader*, k_queue_capacity>;

  Worker(Core& core, std::size_t index);

  /// The thread body.
  void run();
  /// Owner thread only: see Core::schedule. A wake or spawn goes to the LIFO slot; what the
  /// slot held before, or a yield, goes to the back of the queue.
  void schedule_local(TaskHeader* task, bool is_yield) noexcept {
    if (!is_yield) {
      task = std::exchange(m_lifo, task);
      if (task == nullptr) return;  // the slot is not stealable, so waking others is useless
    }
    push_back_and_notify(task);
  }

  [[nodiscard]] Core& core() noexcept { return m_core; }
  /// Owner thread only: `task` waits in this worker's LIFO slot, which no other thread takes
  /// tasks from.
  [[nodiscard]] bool holds_in_lifo(const TaskHeader* task) const noexcept { return m_lifo == task; }
  [[nodiscard]] Queue& queue() noexcept { return m_queue; }
  [[nodiscard]] Parker& parker() noexcept { return m_parker; }
  /// Written by the owner; any thread may read (see sched/stats.hpp).
  [[nodiscard]] WorkerStats& stats() noexcept { return m_stats; }
  [[nodiscard]] const WorkerStats& stats() const noexcept { return m_stats; }
  /// Owner thread only: whether to stamp this wake for the scheduling-delay histogram (it is
  /// made by a poll that is being timed; see poll_task).
  [[nodiscard]] bool sample_wake() const noexcept { return m_timing_wakes; }

  /// Owner thread only: hand out, or take back, one task's reference to the core, from the
  /// worker's batch. The batch is settled with the core when the worker exits. Defined in
  /// sched/core.hpp, beside the Core they count.
  void take_core_reference() noexcept;
  void return_core_reference() noexcept;

  /// After the thread has been joined: the next task it still holds, or null.
  [[nodiscard]] TaskHeader* drain_one() noexcept;

 private:
  TaskHeader* next_task();
  TaskHeader* steal_work();
  TaskHeader* retry_before_park();
  TaskHeader* pull_from_inject();
  void run_with_lifo(TaskHeader* task);
  /// Runs one task, counting and (one poll in k_sample_interval) timing it.
  void poll_task(TaskHeader* task);
  /// A task woken during its own poll goes behind the queued tasks (Core::schedule, inlined).
  void requeue(TaskHeader* task) noexcept;
  void push_back(TaskHeader* task) noexcept;
  void push_back_and_notify(TaskHeader* task) noexcept;
  void park();
  std::uint32_t next_random() noexcept;

  Core& m_core;
  const std::size_t m_index;
  Queue m_queue;
  Parker m_parker;
  Inject::Queue::consumer_token_t m_inject_token;
  TaskHeader* m_lifo = nullptr;
  /// Counts down the ticks to the next periodic inject check (a countdown, not a modulo: it
  /// runs on every tick).
  std::uint32_t m_ticks_to_inject_check = k_inject_interval;
  std::uint32_t m_rng;
  bool m_searching = false;
  /// Core references of freed tasks not yet returned to the core.
  std::size_t m_core_debt = 0;
  const bool m_metrics;
  /// The poll in progress is a sampled one, so the wakes it makes are stamped.
  bool m_timing_wakes = false;
  WorkerStats m_stats;
};

/// Set by Worker::run for its thread's lifetime; read through current_worker().
WEFT_TLS extern thread_local Worker* t_current_worker;

/// The worker running on this thread, or null. Inline: spawn, wake and free ask on every call.
[[nodiscard]] inline Worker* current_worker() noexcept {
  return t_current_worker;
}

/// Makes `core` the one weft::spawn uses on this thread while it lives: set on workers, and
/// on the thread that runs shutdown, so that destructors of cancelled tasks may spawn.
class CoreContextGuard {
 public:
  explicit CoreContextGuard(Core* core) noexcept;
  ~CoreContextGuard();
  CoreContextGuard(const CoreContextGuard&) = delete;
  CoreContextGuard& operator=(const CoreContextGuard&) = delete;

 private:
  Core* m_previous;
};

}  // namespace weft::detail
