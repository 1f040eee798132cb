#include "runtime/blocking_pool.hpp"

#include <pthread.h>

#include <stdexcept>
#include <system_error>
#include <thread>

#include "sched/core.hpp"
#include "weft/detail/tls_model.hpp"

namespace weft::detail {
namespace {

/// The pool this thread belongs to, and the call it runs (null off the pool's threads).
WEFT_TLS thread_local const BlockingPool* t_pool = nullptr;
WEFT_TLS thread_local const void* t_running = nullptr;

}  // namespace

BlockingPool::BlockingPool(Options options)
    : m_options(options), m_slots(options.max_threads + options.queue_capacity) {}

BlockingPool::~BlockingPool() = default;

void BlockingPool::submit(std::unique_ptr<BlockingJob> job) {
  std::unique_lock lock(m_mutex);
  if (!m_shutdown) {
    try {
      m_queue.push_back(std::move(job));  // strong guarantee: `job` is intact if it throws
    } catch (...) {
      lock.unlock();
      job.reset();
      m_slots.add_permits(1);
      throw;
    }
    // An idle thread counts as idle until it runs, so compare with the queue: two calls
    // submitted while one thread idles need a second thread.
    if (m_queue.size() <= m_idle) {
      m_work.notify_one();
      return;
    }
    if (start_thread_locked(lock)) return;
    job = std::move(m_queue.back());  // no thread can run it: fail it below
    m_queue.pop_back();
  }
  lock.unlock();
  job.reset();  // its future sees the result channel close: TaskCancelled
  m_slots.add_permits(1);
}

bool BlockingPool::start_thread_locked(std::unique_lock<std::mutex>&) {
  if (m_threads >= m_options.max_threads) return true;  // a busy thread will take it
  try {
    std::thread([self = shared_from_this()] { self->thread_main(); }).detach();
    ++m_threads;
    return true;
  } catch (const std::system_error&) {
    return m_threads > 0;  // out of threads: the running ones will get to it
  } catch (const std::bad_alloc&) {
    return m_threads > 0;  // the same, out of memory for the thread's state
  }
}

void BlockingPool::thread_main() {
  ::pthread_setname_np(::pthread_self(), "weft-blocking");
  t_pool = this;
  std::unique_lock lock(m_mutex);
  for (;;) {
    while (m_queue.empty() && !m_shutdown) {
      ++m_idle;
      const bool woken = m_work.wait_for(lock, m_options.keep_alive,
                                         [this] { return !m_queue.empty() || m_shutdown; });
      --m_idle;
      if (!woken) break;  // idle for keep_alive: let the thread go
    }
    if (m_queue.empty() || m_shutdown) break;
    std::unique_ptr<BlockingJob> job = std::move(m_queue.front());
    m_queue.pop_front();
    auto running = m_running.insert(m_running.end(),
                                    Running{job->spawned_at(), std::chrono::steady_clock::now()});
    t_running = &*running;
    lock.unlock();
    job->run();
    job.reset();
    m_slots.add_permits(1);
    lock.lock();
    t_running = nullptr;
    m_running.erase(running);
  }
  --m_threads;
  m_finished.notify_all();
}

BlockingPool::Snapshot BlockingPool::snapshot() {
  std::lock_guard lock(m_mutex);
  return Snapshot{m_threads, m_idle, m_queue.size(), m_running.size()};
}

std::vector<BlockingJobReport> BlockingPool::shutdown(std::chrono::nanoseconds deadline) {
  std::deque<std::unique_ptr<BlockingJob>> dropped;
  std::vector<BlockingJobReport> still_running;
  {
    std::unique_lock lock(m_mutex);
    m_shutdown = true;
    dropped.swap(m_queue);
    m_work.notify_all();
    // A call on one of our threads that shuts the runtime down would otherwise wait out the
    // whole deadline for itself, and then report itself.
    const bool on_own_thread = t_pool == this;
    const std::size_t own = on_own_thread ? 1 : 0;
    m_finished.wait_for(lock, deadline, [this, own] { return m_threads == own; });
    const auto now = std::chrono::steady_clock::now();
    for (const Running& running : m_running) {
      if (on_own_thread && &running == t_running) continue;
      still_running.push_back(BlockingJobReport{running.spawned_at, now - running.started});
    }
  }
  const std::size_t dropped_count = dropped.size();
  dropped.clear();  // their futures see TaskCancelled
  m_slots.add_permits(dropped_count);
  m_slots.close();  // callers waiting for room see TaskCancelled too
  return still_running;
}

std::shared_ptr<BlockingPool> blocking_pool(Core* core) {
  if (core == nullptr) core = current_core();
  if (core == nullptr) {
    throw std::logic_error(
        "weft::spawn_blocking called outside a runtime's worker; use Runtime::spawn_blocking");
  }
  return core->blocking_pool();
}

Semaphore& blocking_slots(BlockingPool& pool) noexcept {
  return pool.slots();
}

void submit_blocking(BlockingPool& pool, std::unique_ptr<BlockingJob> job) {
  pool.submit(std::move(job));
}

}  // namespace weft::detail
