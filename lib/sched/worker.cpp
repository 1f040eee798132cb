// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/sched/worker.hpp; the comments here name each operation's partner.
#include "sched/worker.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <span>
#include <string>

#include "sched/core.hpp"
#include "task/header.hpp"
#include "weft/detail/coop.hpp"

namespace weft::detail {
namespace {

WEFT_TLS thread_local Core* t_context_core = nullptr;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

void run_hook(Core& core, const std::function<void()>& hook) noexcept {
  if (!hook) return;
  try {
    hook();
  } catch (...) {
    core.report_exception(std::current_exception());
  }
}

}  // namespace

WEFT_TLS constinit thread_local std::uint32_t t_coop_budget = k_coop_unlimited;

WEFT_TLS thread_local Worker* t_current_worker = nullptr;

Core* current_core() noexcept {
  return t_context_core;
}

CoreContextGuard::CoreContextGuard(Core* core) noexcept
    : m_previous(std::exchange(t_context_core, core)) {}
CoreContextGuard::~CoreContextGuard() {
  t_context_core = m_previous;
}

Worker::Worker(Core& core, std::size_t index)
    : m_core(core),
      m_index(index),
      m_inject_token(core.inject().queue()),
      m_rng(static_cast<std::uint32_t>(index * 0x9E3779B9u + 1)),
      m_metrics(core.options().enable_metrics),
      m_finished(m_metrics ? &m_stats.finished : nullptr) {}

void Worker::run() {
  t_current_worker = this;
  CoreContextGuard context(&m_core);
  std::string name = m_core.options().thread_name_prefix + "-" + std::to_string(m_index);
  name.resize(std::min<std::size_t>(name.size(), 15));
  ::pthread_setname_np(::pthread_self(), name.c_str());
  // release: pairs with the acquire load in StallMonitor::check.
  m_stats.thread.store(current_thread_handle(), std::memory_order_release);
  run_hook(m_core, m_core.options().on_thread_start);
  if (m_metrics) m_stats.busy_since.set(metrics_now());

  while (!m_core.is_shutdown()) {
    if (TaskHeader* task = next_task()) {
      run_with_lifo(task);
    } else if (TaskHeader* stolen = steal_work()) {
      run_with_lifo(stolen);
    } else if (TaskHeader* late = retry_before_park()) {
      run_with_lifo(late);
    } else {
      park();
    }
  }
  if (m_searching) {
    m_searching = false;
    (void)m_core.idle().transition_worker_from_searching();
  }

  run_hook(m_core, m_core.options().on_thread_stop);
  t_current_worker = nullptr;
  // Settle the batch: tasks freed from now on on this thread release the core directly.
  // The references of the last batch not yet handed to a task (see take_core_reference).
  const std::size_t spawned_in_batch =
      static_cast<std::size_t>(m_stats.spawned.get() % k_core_reference_batch);
  const std::size_t credit = spawned_in_batch == 0 ? 0 : k_core_reference_batch - spawned_in_batch;
  const std::size_t unsettled = credit + std::exchange(m_core_debt, 0);
  if (unsettled != 0) m_core.release(unsettled);
}

TaskHeader* Worker::next_task() {
  if (--m_ticks_to_inject_check == 0) {
    m_ticks_to_inject_check = k_inject_interval;
    // Readiness that arrived while every worker was busy: its tasks join this queue.
    m_core.reactor().poll_without_blocking();
    if (TaskHeader* task = m_core.inject().pop(m_inject_token)) {
      if (m_lifo != nullptr) {
        const bool first = m_queue.is_empty();  // see schedule_local
        push_back(std::exchange(m_lifo, nullptr));
        if (first) m_core.notify_parked_local();
      }
      return task;
    }
  }
  if (m_lifo != nullptr) return std::exchange(m_lifo, nullptr);  // left by the LIFO cap
  if (auto task = m_queue.pop()) return *task;
  return pull_from_inject();
}

TaskHeader* Worker::pull_from_inject() {
  TaskHeader* batch[k_inject_batch];
  std::size_t room = Queue::capacity() - m_queue.len();
  std::size_t want = std::min<std::size_t>(k_inject_batch, room);
  std::size_t n = want == 0 ? 0 : m_core.inject().pop_batch(m_inject_token, batch, want);
  if (n == 0) return nullptr;
  for (std::size_t i = 1; i < n; ++i)
    push_back(batch[i]);
  if (n > 1) m_core.notify_parked_local();
  return batch[0];
}

TaskHeader* Worker::steal_work() {
  if (!m_searching) {
    if (!m_core.idle().transition_worker_to_searching()) return nullptr;
    m_searching = true;
  }
  const std::size_t workers = m_core.worker_count();
  const std::size_t start = next_random() % workers;
  for (std::size_t i = 0; i < workers; ++i) {
    std::size_t victim = (start + i) % workers;
    if (victim == m_index) continue;
    if (m_metrics) m_stats.steal_attempts.add();
    if (auto task = m_core.worker(victim).queue().steal_into(m_queue)) {
      if (m_metrics) m_stats.steals.add();
      return *task;
    }
  }
  return pull_from_inject();
}

TaskHeader* Worker::retry_before_park() {
  // A searcher that found nothing pauses briefly and looks once more, so that work published
  // while its round ran (a wake racing the round) is taken without a park and an unpark. It
  // does not spin for longer: on two cores a spinning worker holds the CPU that the thread
  // about to produce the work needs (chained_spawn's hand-offs took longer with a 50 us
  // spin, not shorter), and a server pays for every microsecond of it in CPU per request
  // (the greeter's CPU per dialog fell by about a sixth without it; docs/benchmarks.md).
  if (!m_searching) return nullptr;
  for (std::uint32_t i = 0; i < k_pauses_before_retry; ++i)
    cpu_relax();
  return steal_work();
}

void Worker::run_with_lifo(TaskHeader* task) {
  if (m_searching) {
    m_searching = false;
    // The last searcher to find work wakes another, which searches in its place, if work
    // is left for it: the same re-check (a fence, then every queue) a parking searcher makes.
    // Work published from here on sees nobody searching and wakes a worker itself.
    if (m_core.idle().transition_worker_from_searching()) m_core.notify_if_work_pending();
  }
  poll_task(task);
  for (std::uint32_t polls = 0; m_lifo != nullptr; ++polls) {
    if (polls == k_max_lifo_polls) {
      // The cap: the LIFO task goes behind everything queued, so two tasks that keep waking
      // each other cannot starve the rest. With nothing queued there is nobody to be fair to
      // locally: the task stays in the slot and next_task() takes it after its inject check,
      // which keeps a chain of spawns on this worker instead of handing it to a thief.
      if (!m_queue.is_empty()) {
        push_back(std::exchange(m_lifo, nullptr));  // not a first push: no wake needed
      }
      break;
    }
    poll_task(std::exchange(m_lifo, nullptr));
  }
}

void Worker::poll_task(TaskHeader* task) {
  // The stall monitor's view: the site first, then an odd sequence (see sched/stats.hpp).
  // release: orders the previous poll's even sequence before the new site; pairs with the
  // acquire load of the site in StallMonitor::check.
  m_stats.polling_site.store(task->spawned_at, std::memory_order_release);
  // relaxed: only this thread writes the sequence.
  const std::uint64_t sequence = m_stats.poll_sequence.load(std::memory_order_relaxed);
  // release: pairs with the acquire load in StallMonitor::check.
  m_stats.poll_sequence.store(sequence + 1, std::memory_order_release);
  t_coop_budget = k_coop_budget;
  // A stamped wake (schedule_local) asks for this poll to be timed. With metrics off no wake
  // is stamped, so this one test is all that sampling costs a poll, on or off.
  RunOutcome outcome;
  if (task->woken_at == 0) [[likely]] {
    outcome = run_task(task, m_finished);  // may free the task
  } else {
    outcome = poll_timed(task);
  }
  t_coop_budget = k_coop_unlimited;
  // release: the monitor sees the poll over; pairs with the acquire load in check.
  m_stats.poll_sequence.store(sequence + 2, std::memory_order_release);
  if (outcome == RunOutcome::requeue) requeue(task);
}

RunOutcome Worker::poll_timed(TaskHeader* task) {
  const std::uint32_t woken_at = std::exchange(task->woken_at, 0);
  const std::uint64_t start = metrics_now();
  m_stats.scheduling_delay.record(since_stamp(woken_at, start));
  const RunOutcome outcome = run_task(task, &m_stats.finished);  // may free the task
  m_stats.poll_duration.record(metrics_now() - start);
  return outcome;
}

void Worker::sample_wake(TaskHeader* task) noexcept {
  m_wakes_to_sample = m_core.options().metrics_sample_interval;
  if (m_metrics) task->woken_at = wake_stamp(metrics_now());
}

void Worker::requeue(TaskHeader* task) noexcept {
  if (m_core.is_shutdown()) {
    m_core.schedule(task, true);  // the inject queue, which shutdown drains
    return;
  }
  schedule_local(task, true);
}

void Worker::push_back_and_notify(TaskHeader* task) noexcept {
  // Only the push that makes the queue non-empty needs to look for a parked worker: if a
  // worker parked after that push's check, its last-searcher re-check found the queue
  // non-empty (or found it emptied, and then the next push is again a first one). Later
  // pushes would pay the StoreLoad fence for nothing, on every yield of a busy worker.
  const bool first = m_queue.is_empty();
  push_back(task);
  if (first) m_core.notify_parked_local();
}

void Worker::push_back(TaskHeader* task) noexcept {
  m_queue.push_back(task, [this](std::span<TaskHeader*> overflow) {
    m_core.inject().push_batch(overflow);
    m_core.notify_parked();  // half a queue of new work in the inject queue
  });
}

void Worker::park() {
  if (m_metrics) {
    m_stats.parks.add();
    m_stats.busy_ns.add(metrics_now() - m_stats.busy_since.get());
    m_stats.busy_since.set(0);
  }
  const bool last_searcher = m_core.idle().transition_worker_to_parked(m_index, m_searching);
  m_searching = false;
  if (last_searcher) m_core.notify_if_work_pending();
  while (!m_core.is_shutdown()) {
    // One parked worker sleeps in the reactor's loop, so that I/O and timers wake it; the
    // others sleep on their futex.
    if (!m_core.reactor().park_in_loop(m_parker)) m_parker.park();
    if (m_lifo != nullptr || !m_queue.is_empty()) {
      // The loop's callbacks woke tasks onto this worker: it runs them itself.
      m_core.idle().unpark_self(m_index);
    }
    if (m_core.idle().transition_worker_from_parked(m_index)) {
      m_searching = true;  // unpark_one or unpark_self counted this worker as searching
      break;
    }
  }
  if (m_metrics) m_stats.busy_since.set(metrics_now());
}

TaskHeader* Worker::drain_one() noexcept {
  if (m_lifo != nullptr) return std::exchange(m_lifo, nullptr);
  if (auto task = m_queue.pop()) return *task;
  return nullptr;
}

std::uint32_t Worker::next_random() noexcept {
  // xorshift32: victim selection needs spread, not quality.
  m_rng ^= m_rng << 13;
  m_rng ^= m_rng >> 17;
  m_rng ^= m_rng << 5;
  return m_rng;
}

}  // namespace weft::detail
