// One worker thread: its run queue, LIFO slot, parker and loop.
//
// Invariants
// - The LIFO slot, the tick and sample countdowns, the searching flag, the core-reference batch
//   and the inject consumer token belong to the worker's thread; other threads touch only
//   `queue()` (to steal) and `parker()` (to unpark).
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
#include "task/header.hpp"
#include "weft/detail/tls_model.hpp"

namespace weft::detail {

class Core;

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

  using Queue = LocalQueue<TaskHeader*, k_queue_capacity>;

  Worker(Core& core, std::size_t index);

  /// The thread body.
  void run();
  /// Owner thread only: see Core::schedule. A wake or spawn goes to the LIFO slot; what the
  /// slot held before, or a yield, goes to the back of the queue.
  void schedule_local(TaskHeader* task, bool is_yield) noexcept {
    // Every poll follows one schedule, so counting schedules samples polls evenly, and the
    // poll itself then needs only the test of the stamp (see poll_task).
    if (--m_wakes_to_sample == 0) [[unlikely]]
      sample_wake(task);
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
  /// Runs one task, counting it, and timing it if its wake was stamped.
  void poll_task(TaskHeader* task);
  /// The timed poll: out of line, so that the untimed one saves no registers for it.
  [[gnu::noinline]] RunOutcome poll_timed(TaskHeader* task);
  /// The sampled wake: stamps the task when metrics are on, and restarts the countdown.
  [[gnu::noinline]] void sample_wake(TaskHeader* task) noexcept;
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
  /// Counts down the schedules to the next sampled one; the first is sampled, so that even a
  /// short workload shows in the histograms.
  std::uint32_t m_wakes_to_sample = 1;
  /// Where finished tasks are counted: m_stats.finished, or null with metrics off.
  OwnerCounter* const m_finished;
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
