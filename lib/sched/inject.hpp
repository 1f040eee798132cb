// The inject queue: tasks scheduled from outside the workers, and a worker's overflow.
//
// Invariants
// - Any thread may push; workers (and shutdown) pop.
// - m_len is raised with seq_cst after each push, and parking workers read it with seq_cst
//   after announcing they park (see Idle and docs/design.md "Parking"). It can briefly
//   undercount (a task popped before its pusher raised the count) or overcount (after a pop,
//   before the decrement); neither loses a wake-up, because every pusher checks for sleepers
//   after its own increment.
// - The queue holds notified references; it does not own tasks beyond that.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

namespace weft::detail {

struct TaskHeader;

class Inject {
 public:
  using Queue = moodycamel::ConcurrentQueue<TaskHeader*>;

  void push(TaskHeader* task) {
    if (!m_queue.enqueue(task)) out_of_memory();
    // seq_cst: the StoreLoad partner of the seq_cst state change in Idle::
    // transition_worker_to_parked; the pusher then reads the idle state (notify_parked).
    m_len.fetch_add(1, std::memory_order_seq_cst);
  }

  void push_batch(std::span<TaskHeader* const> tasks) {
    if (!m_queue.enqueue_bulk(tasks.data(), tasks.size())) out_of_memory();
    // seq_cst: as in push().
    m_len.fetch_add(static_cast<std::int64_t>(tasks.size()), std::memory_order_seq_cst);
  }

  TaskHeader* pop(Queue::consumer_token_t& token) noexcept {
    TaskHeader* task = nullptr;
    if (!has_tasks()) return nullptr;
    if (!m_queue.try_dequeue(token, task)) return nullptr;
    // relaxed: the count is a hint for parking, which rereads it with seq_cst.
    m_len.fetch_sub(1, std::memory_order_relaxed);
    return task;
  }

  TaskHeader* pop() noexcept {
    TaskHeader* task = nullptr;
    if (!m_queue.try_dequeue(task)) return nullptr;
    m_len.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see pop(token)
    return task;
  }

  /// Takes up to `max` tasks at once.
  std::size_t pop_batch(Queue::consumer_token_t& token, TaskHeader** out, std::size_t max) {
    if (!has_tasks()) return 0;
    std::size_t n = m_queue.try_dequeue_bulk(token, out, max);
    m_len.fetch_sub(static_cast<std::int64_t>(n), std::memory_order_relaxed);  // see pop()
    return n;
  }

  [[nodiscard]] bool has_tasks() const noexcept {
    // seq_cst: read after the parking worker's seq_cst state change (see the header).
    return m_len.load(std::memory_order_seq_cst) > 0;
  }

  [[nodiscard]] std::int64_t len() const noexcept {
    return m_len.load(std::memory_order_relaxed);  // relaxed: a metric
  }

  Queue& queue() noexcept { return m_queue; }

 private:
  // The queue fails only when it cannot allocate a block; a task that cannot be queued can
  // never run, so this is fatal, like any other allocation failure in the scheduler.
  [[noreturn]] static void out_of_memory() noexcept {
    std::fputs("weft: fatal: out of memory growing the inject queue\n", stderr);
    std::abort();
  }

  Queue m_queue;
  alignas(64) std::atomic<std::int64_t> m_len{0};
};

}  // namespace weft::detail
