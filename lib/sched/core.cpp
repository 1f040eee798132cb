// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/sched/core.hpp; the comments here name each operation's partner.
#include "sched/core.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <typeinfo>

#include "sched/worker.hpp"
#include "task/header.hpp"
#include "weft/detail/tls_model.hpp"

namespace weft::detail {
namespace {

std::size_t resolve_workers(std::size_t requested) {
  if (requested != 0) return requested;
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

void print_exception(std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft: exception escaped a detached task: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "weft: exception escaped a detached task (not a std::exception)\n");
  }
}

long long whole_ms(std::chrono::nanoseconds duration) {
  return static_cast<long long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

void print_blocking_report(const std::vector<BlockingJobReport>& jobs) {
  std::fprintf(stderr, "weft: shutdown left %zu blocking call(s) running:\n", jobs.size());
  for (const BlockingJobReport& job : jobs) {
    std::fprintf(stderr, "weft:   spawned at %s:%u (%s), running for %lld ms\n",
                 job.spawned_at.file_name(), static_cast<unsigned>(job.spawned_at.line()),
                 job.spawned_at.function_name(), whole_ms(job.running_for));
  }
}

/// What the largest part of a stall's account suggests doing about it.
const char* stall_advice(const StallReport& stall) {
  if (stall.on_cpu >= stall.asleep && stall.on_cpu >= stall.waiting_for_cpu) {
    return "long work in the task or in its system calls (split it with yield_now, or move "
           "it to spawn_blocking)";
  }
  if (stall.asleep >= stall.waiting_for_cpu) {
    return "the task blocks its worker (move the blocking call to spawn_blocking)";
  }
  return "the machine has more runnable threads than cores";
}

void print_stall(const StallReport& stall) {
  char account[320] = "";
  if (stall.observed_for > std::chrono::nanoseconds::zero()) {
    std::snprintf(account, sizeof account,
                  ". Of the last %lld ms its thread ran for %lld, slept for about %lld and waited "
                  "for a core for about %lld: %s",
                  whole_ms(stall.observed_for), whole_ms(stall.on_cpu), whole_ms(stall.asleep),
                  whole_ms(stall.waiting_for_cpu), stall_advice(stall));
  }
  std::fprintf(stderr,
               "weft: a task spawned at %s:%u (%s) has been in one poll for %lld ms on worker "
               "%zu; the tasks queued behind it on that worker wait%s\n",
               stall.spawned_at.file_name(), static_cast<unsigned>(stall.spawned_at.line()),
               stall.spawned_at.function_name(), whole_ms(stall.stalled_for), stall.worker,
               account);
}

WEFT_TLS thread_local std::uint32_t t_wake_tick = 0;

RuntimeOptions with_defaults(RuntimeOptions options) {
  if (!options.on_stall) options.on_stall = print_stall;
  if (options.stall_threshold < std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("weft::RuntimeOptions: stall_threshold must not be negative");
  }
  if (!std::has_single_bit(options.metrics_sample_interval)) {
    throw std::invalid_argument(
        "weft::RuntimeOptions: metrics_sample_interval must be a power of two");
  }
  options.workers = resolve_workers(options.workers);
  if (!options.on_unhandled_exception) options.on_unhandled_exception = print_exception;
  if (!options.on_blocking_shutdown_timeout) {
    options.on_blocking_shutdown_timeout = print_blocking_report;
  }
  if (options.max_blocking_threads == 0 ||
      options.max_blocking_threads > Semaphore::k_max_permits / 2 ||
      options.blocking_queue_capacity > Semaphore::k_max_permits / 2) {
    throw std::invalid_argument(
        "weft::RuntimeOptions: max_blocking_threads must be at least 1, and it and "
        "blocking_queue_capacity at most Semaphore::k_max_permits / 2");
  }
  // condition_variable::wait_for adds these to now(): a year stands in for "for ever"
  // without overflowing.
  constexpr std::chrono::nanoseconds k_forever = std::chrono::hours(24 * 365);
  options.blocking_keep_alive =
      std::clamp(options.blocking_keep_alive, std::chrono::nanoseconds::zero(), k_forever);
  options.blocking_shutdown_timeout =
      std::clamp(options.blocking_shutdown_timeout, std::chrono::nanoseconds::zero(), k_forever);
  return options;
}

}  // namespace

Core::Core(RuntimeOptions options)
    : m_options(with_defaults(std::move(options))),
      m_metrics(m_options.enable_metrics),
      m_reactor(new Reactor()),
      m_blocking(std::make_shared<BlockingPool>(
          BlockingPool::Options{m_options.max_blocking_threads, m_options.blocking_queue_capacity,
                                m_options.blocking_keep_alive})),
      m_idle(m_options.workers),
      m_owned(m_options.workers) {
  m_workers.reserve(m_options.workers);
  for (std::size_t i = 0; i < m_options.workers; ++i) {
    m_workers.push_back(std::make_unique<Worker>(*this, i));
  }
  if (m_options.stall_threshold > std::chrono::nanoseconds::zero()) {
    m_stall_monitor =
        std::make_unique<StallMonitor>(*this, m_options.stall_threshold, m_options.on_stall);
  }
}

Core::~Core() {
  m_reactor->release();
}

void Core::start() {
  m_threads.reserve(m_workers.size());
  for (auto& worker : m_workers) {
    m_threads.emplace_back([w = worker.get()] { w->run(); });
  }
  if (m_stall_monitor) m_stall_monitor->start();
}

void Core::retain(std::size_t count) noexcept {
  // relaxed: a new reference is made from one that keeps the core alive.
  m_refs.fetch_add(count, std::memory_order_relaxed);
}

void Core::release(std::size_t count) noexcept {
  // acq_rel: the last owner sees every other owner's writes before deleting; pairs with itself.
  if ((m_refs.fetch_sub(count, std::memory_order_acq_rel) & k_ref_mask) == count) delete this;
}

void Core::schedule_from_outside(TaskHeader* task) noexcept {
  if (m_metrics && (++t_wake_tick & (m_options.metrics_sample_interval - 1)) == 0) {
    task->woken_at = wake_stamp(metrics_now());
  }
  schedule_remote(task);
}

void Core::schedule_remote(TaskHeader* task) noexcept {
  // Pin the core: once the task is in the queue, its reference (and through it the core's)
  // may be consumed and freed by another thread, for instance by a shutdown that drains the
  // queue while a consuming wake is still in here. The task's reference keeps the core alive
  // until the push, so taking one now is safe.
  retain();
  m_inject.push(task);
  // seq_cst: after our seq_cst push. Either shutdown's last drain sees the task, or we see
  // that shutdown finished and drop the reference ourselves (pairs with the store in
  // shutdown()).
  if (m_shutdown_done.load(std::memory_order_seq_cst)) {
    drain_inject();
  } else {
    notify_parked();
  }
  release();
}

void Core::notify_parked() noexcept {
  if (!m_idle.should_notify()) return;
  std::ptrdiff_t index = m_idle.unpark_one();
  if (index >= 0) m_workers[static_cast<std::size_t>(index)]->parker().unpark();
}

void Core::notify_parked_local() noexcept {
  // seq_cst fence: orders the release store of the local queue's tail before the load of the
  // idle state in should_notify (StoreLoad); pairs with the seq_cst change in
  // Idle::transition_worker_to_parked followed by the fence in notify_if_work_pending.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  notify_parked();
}

void Core::notify_if_work_pending() noexcept {
  // seq_cst fence: the parking worker's seq_cst state change comes before these queue reads;
  // pairs with the fence in notify_parked_local.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (auto& worker : m_workers) {
    if (!worker->queue().is_empty()) {
      notify_parked();
      return;
    }
  }
  if (m_inject.has_tasks()) notify_parked();
}

RuntimeMetrics Core::metrics() const {
  RuntimeMetrics out;
  out.workers.reserve(m_workers.size());
  // Spawns and completions in wrapping 32-bit arithmetic, as m_refs keeps the remote spawns:
  // their difference, the tasks alive, is far below 2^31. relaxed: counts for snapshots only.
  auto spawned = static_cast<std::uint32_t>(m_refs.load(std::memory_order_relaxed) >> 32);
  auto finished = static_cast<std::uint32_t>(m_remote_finished.load(std::memory_order_relaxed));
  for (const auto& worker : m_workers) {
    const WorkerStats& stats = worker->stats();
    WorkerMetrics metrics;
    // Polls begun: a poll in progress counts, as a task a joiner saw finish must have been
    // polled. relaxed: a count for snapshots only (the monitor's acquire is not needed here).
    metrics.polls = m_options.enable_metrics
                        ? (stats.poll_sequence.load(std::memory_order_relaxed) + 1) / 2
                        : 0;
    metrics.steal_attempts = stats.steal_attempts.get();
    metrics.steals = stats.steals.get();
    metrics.parks = stats.parks.get();
    metrics.local_queue_depth = worker->queue().len();
    // A worker that has not parked for a while is busy now: count its open stretch too, or a
    // saturated worker would read 0% busy until it next parks. The two counters are read
    // apart, so a park in between may count one stretch twice in this one snapshot.
    std::uint64_t busy = stats.busy_ns.get();
    if (const std::uint64_t since = stats.busy_since.get(); since != 0) {
      const std::uint64_t now = metrics_now();
      if (now > since) busy += now - since;
    }
    metrics.busy_time = std::chrono::nanoseconds(busy);
    stats.poll_duration.add_to(out.poll_duration);
    stats.scheduling_delay.add_to(out.scheduling_delay);
    spawned += static_cast<std::uint32_t>(stats.spawned.get());
    finished += static_cast<std::uint32_t>(stats.finished.get());
    out.workers.push_back(metrics);
  }
  // The counters are read one after another while tasks come and go: never report below 0.
  // (With metrics off only the workers' spawns are counted, and nothing is reported.)
  const auto alive = static_cast<std::int32_t>(spawned - finished);
  if (m_metrics && alive > 0) out.tasks_alive = static_cast<std::size_t>(alive);
  out.inject_queue_depth = static_cast<std::size_t>(std::max<std::int64_t>(0, m_inject.len()));
  const BlockingPool::Snapshot blocking = m_blocking->snapshot();
  out.blocking_threads = blocking.threads;
  out.blocking_idle_threads = blocking.idle_threads;
  out.blocking_queue_depth = blocking.queued;
  out.blocking_running = blocking.running;
  return out;
}

void Core::report_exception(std::exception_ptr error) noexcept {
  try {
    m_options.on_unhandled_exception(std::move(error));
  } catch (...) {
    std::fprintf(stderr, "weft: the unhandled-exception handler threw; ignored\n");
  }
}

void Core::drain_inject() noexcept {
  // seq_cst (inside has_tasks): the load half of the pair with schedule_remote; either this
  // sees a late push's count, or the pusher saw m_shutdown_done and drains itself.
  if (!m_inject.has_tasks()) return;
  retain();  // freeing the last queued task may drop what keeps the core alive
  // A late task may never have been polled, so it is in no owned list: cancel it here.
  while (TaskHeader* task = m_inject.pop())
    discard_queued(task);
  release();
}

void Core::shutdown() {
  std::lock_guard lock(m_shutdown_mutex);
  if (m_shutdown_done.load(std::memory_order_relaxed)) return;  // relaxed: under the mutex

  // release: pairs with the acquire in is_shutdown(); workers finish their current poll.
  m_shutdown.store(true, std::memory_order_release);
  for (auto& worker : m_workers)
    worker->parker().unpark();
  for (auto& thread : m_threads) {
    if (thread.joinable()) thread.join();
  }
  if (m_stall_monitor) m_stall_monitor->stop();
  // From here on the thread that submits a loop op also runs the loop, so the handles that
  // cancelled tasks close below finish closing.
  m_reactor->mark_runtime_stopped();

  // The workers are gone; this thread is now the only one that runs tasks. Cancelling a task
  // runs its destructors, which may spawn (refused once closed: cancelled at once) or wake
  // other tasks (queued, then dropped below), so repeat until nothing is left.
  m_owned.close();
  CoreContextGuard context(this);
  for (;;) {
    bool progress = false;
    while (TaskHeader* task = m_owned.pop()) {
      shutdown_task(task);
      progress = true;
    }
    for (auto& worker : m_workers) {
      while (TaskHeader* task = worker->drain_one()) {
        discard_queued(task);
        progress = true;
      }
    }
    while (TaskHeader* task = m_inject.pop()) {
      discard_queued(task);
      progress = true;
    }
    if (!progress) break;
  }
  // seq_cst: pairs with the load in schedule_remote (see there).
  m_shutdown_done.store(true, std::memory_order_seq_cst);
  drain_inject();

  // The tasks that awaited blocking calls are gone; their calls may still be running.
  std::vector<BlockingJobReport> still_running =
      m_blocking->shutdown(m_options.blocking_shutdown_timeout);
  if (!still_running.empty()) {
    try {
      m_options.on_blocking_shutdown_timeout(still_running);
    } catch (...) {
      std::fprintf(stderr, "weft: the blocking shutdown report hook threw; ignored\n");
    }
  }
}

}  // namespace weft::detail
