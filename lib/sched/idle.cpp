// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/sched/idle.hpp; the comments here name each operation's partner.
#include "sched/idle.hpp"

#include <algorithm>

namespace weft::detail {

Idle::Idle(std::size_t workers)
    : m_workers(static_cast<std::uint32_t>(workers)),
      m_state(k_unparked_one * workers),
      m_parked(workers, false) {
  m_sleepers.reserve(workers);
}

bool Idle::should_notify() const noexcept {
  // seq_cst: the load half of the StoreLoad pair with transition_worker_to_parked; the caller
  // published its work before (Inject::push, or the fence in Core::notify_parked_local).
  std::uint64_t state = m_state.load(std::memory_order_seq_cst);
  auto searching = static_cast<std::uint32_t>(state);
  auto unparked = static_cast<std::uint32_t>(state >> 32);
  return searching == 0 && unparked < m_workers;
}

std::ptrdiff_t Idle::unpark_one() {
  std::lock_guard lock(m_mutex);
  if (!should_notify() || m_sleepers.empty()) return -1;
  std::size_t worker = m_sleepers.back();
  m_sleepers.pop_back();
  m_parked[worker] = false;
  // seq_cst: one total order for every change of the counts (see the header).
  m_state.fetch_add(k_unparked_one | k_searching_one, std::memory_order_seq_cst);
  return static_cast<std::ptrdiff_t>(worker);
}

bool Idle::transition_worker_to_searching() noexcept {
  // seq_cst: part of the total order of count changes; an overshoot by a racing worker is
  // harmless (the cap is a heuristic, the wake-up guarantee does not rest on it).
  std::uint64_t state = m_state.load(std::memory_order_seq_cst);
  if (2 * static_cast<std::uint32_t>(state) >= m_workers) return false;
  // seq_cst: as above.
  m_state.fetch_add(k_searching_one, std::memory_order_seq_cst);
  return true;
}

bool Idle::transition_worker_from_searching() noexcept {
  // seq_cst: as above.
  std::uint64_t prev = m_state.fetch_sub(k_searching_one, std::memory_order_seq_cst);
  return static_cast<std::uint32_t>(prev) == 1;
}

bool Idle::transition_worker_to_parked(std::size_t worker, bool searching) {
  std::lock_guard lock(m_mutex);
  std::uint64_t dec = k_unparked_one | (searching ? k_searching_one : 0);
  // seq_cst: the store half of the StoreLoad pair; the worker then re-reads the queues (if it
  // was the last searcher) and the pusher reads this state after publishing.
  std::uint64_t prev = m_state.fetch_sub(dec, std::memory_order_seq_cst);
  m_sleepers.push_back(worker);
  m_parked[worker] = true;
  // Re-check whenever nobody is left searching, not only when this worker was the last
  // searcher: a worker refused the search (half already searched) would otherwise park while
  // work published under the searchers' watch is left for them, and they are gone.
  return static_cast<std::uint32_t>(prev) - (searching ? 1 : 0) == 0;
}

bool Idle::transition_worker_from_parked(std::size_t worker) {
  std::lock_guard lock(m_mutex);
  return !m_parked[worker];
}

void Idle::unpark_self(std::size_t worker) {
  std::lock_guard lock(m_mutex);
  if (!m_parked[worker]) return;  // unpark_one took it out already
  std::erase(m_sleepers, worker);
  m_parked[worker] = false;
  // seq_cst: one total order for every change of the counts (see the header).
  m_state.fetch_add(k_unparked_one | k_searching_one, std::memory_order_seq_cst);
}

std::uint32_t Idle::searching() const noexcept {
  return static_cast<std::uint32_t>(m_state.load(std::memory_order_relaxed));  // a metric
}

std::uint32_t Idle::unparked() const noexcept {
  return static_cast<std::uint32_t>(m_state.load(std::memory_order_relaxed) >> 32);  // metric
}

}  // namespace weft::detail
