// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/sched/stall_monitor.hpp; the comments here name each operation's partner.
#include "sched/stall_monitor.hpp"

#include <pthread.h>

#include <algorithm>

#include "sched/core.hpp"
#include "sched/worker.hpp"

namespace weft::detail {

StallMonitor::StallMonitor(Core& core, std::chrono::nanoseconds threshold,
                           std::function<void(const StallReport&)> hook)
    : m_core(core), m_threshold(threshold), m_hook(std::move(hook)) {}

StallMonitor::~StallMonitor() {
  stop();
}

void StallMonitor::start() {
  m_thread = std::thread([this] { run(); });
}

void StallMonitor::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_stop_requested.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

void StallMonitor::run() {
  ::pthread_setname_np(::pthread_self(), "weft-stalls");
  std::vector<Seen> seen(m_core.worker_count());
  // A tiny threshold must not turn the monitor into a spinning thread: it checks at most
  // every k_min_check_interval, at the cost of precision for such thresholds.
  const auto busy_interval = std::max<std::chrono::nanoseconds>(
      m_threshold / k_checks_per_threshold, k_min_check_interval);
  // While no worker polls anything, checking eight times a threshold only burns CPU (each
  // wake-up of this thread costs tens of microseconds on a virtual machine): the interval
  // doubles per quiet check, up to the threshold, and drops back at the first poll seen.
  const auto quiet_interval = std::max<std::chrono::nanoseconds>(busy_interval, m_threshold);
  auto interval = busy_interval;
  std::unique_lock lock(m_mutex);
  while (!m_stop_requested.wait_for(lock, interval, [this] { return m_stopping; })) {
    lock.unlock();
    interval = check(seen) ? busy_interval : std::min(2 * interval, quiet_interval);
    lock.lock();
  }
}

bool StallMonitor::check(std::vector<Seen>& seen) {
  const auto now = std::chrono::steady_clock::now();
  bool active = false;
  for (std::size_t index = 0; index < seen.size(); ++index) {
    const WorkerStats& stats = m_core.worker(index).stats();
    // acquire: pairs with the release stores in Worker::poll_task, so the site read below is
    // at least as new as this sequence.
    const std::uint64_t sequence = stats.poll_sequence.load(std::memory_order_acquire);
    Seen& worker = seen[index];
    if (sequence != worker.sequence || sequence % 2 != 0) active = true;
    if (sequence % 2 == 0 || sequence != worker.sequence) {
      worker = Seen{sequence, now, false};
      continue;
    }
    if (worker.reported) continue;
    // acquire: pairs with the release store in Worker::run, which precedes its first poll
    // and so this odd sequence.
    const ThreadHandle thread = stats.thread.load(std::memory_order_acquire);
    if (now - worker.since < m_threshold) {
      watch(worker, thread, now);
      continue;
    }
    // acquire: pairs with the release store of the site in poll_task. A site from a later
    // poll comes after that poll's sequence change, which the re-check below then sees.
    const SourceLocation site = stats.polling_site.load(std::memory_order_acquire);
    // acquire: as the first load; an unchanged sequence means the site is this poll's.
    if (stats.poll_sequence.load(std::memory_order_acquire) != sequence) continue;
    worker.reported = true;
    StallReport report{site, index, now - worker.since};
    watch(worker, thread, now);
    account(worker, thread, now, report);
    try {
      m_hook(report);
    } catch (...) {
      // The hook must not throw; a report is not worth the monitor.
    }
  }
  return active;
}

void StallMonitor::watch(Seen& worker, const ThreadHandle& thread,
                         std::chrono::steady_clock::time_point now) noexcept {
  if (!worker.watch) {
    if (const auto cpu = thread_cpu_time(thread)) worker.watch = Watch{now, *cpu};
    return;
  }
  if (const auto asleep = thread_is_asleep(thread)) {
    ++worker.watch->looks;
    if (*asleep) ++worker.watch->looks_asleep;
  }
}

void StallMonitor::account(const Seen& worker, const ThreadHandle& thread,
                           std::chrono::steady_clock::time_point now,
                           StallReport& report) noexcept {
  // A poll that reached the threshold by the second look (a monitor that woke late, or a
  // threshold under two check intervals) was never watched.
  if (!worker.watch || worker.watch->looks == 0) return;
  const auto cpu = thread_cpu_time(thread);
  if (!cpu) return;
  const Watch& watch = *worker.watch;
  const auto observed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - watch.since);
  // The CPU clock and steady_clock are read moments apart: keep the parts within the whole.
  const auto on_cpu =
      std::clamp(*cpu - watch.cpu_at_start, std::chrono::nanoseconds::zero(), observed);
  const auto asleep = std::min(observed * watch.looks_asleep / watch.looks, observed - on_cpu);
  report.observed_for = observed;
  report.on_cpu = on_cpu;
  report.asleep = asleep;
  report.waiting_for_cpu = observed - on_cpu - asleep;
}

}  // namespace weft::detail
