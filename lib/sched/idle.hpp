// Which workers are searching for work and which are parked, and who to wake.
//
// The rule (Tokio's idle.rs, Go's spinning-M rule): at most half the workers search at once;
// work that is published while no worker searches wakes one parked worker; the last searcher
// to find work wakes another, and the last searcher to give up re-checks every queue before
// it sleeps. Together these lose no wake-up and avoid a thundering herd.
//
// Invariants
// - m_state packs (searching, unparked) as two 32-bit halves; every change is a seq_cst
//   read-modify-write, and every check that decides not to wake anyone is a seq_cst load that
//   follows the publication of the work (its StoreLoad partner; see Inject and the
//   notify_* functions in core.cpp).
// - m_sleepers and m_parked are guarded by m_mutex. A worker is in m_sleepers exactly when
//   m_parked[i] is true; whoever takes it out has already counted it unparked and searching.
// - Any thread may call should_notify / unpark_one; a worker calls the transition_worker_*
//   functions for itself only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace weft::detail {

class Idle {
 public:
  explicit Idle(std::size_t workers);

  /// True when a parked worker should be woken for newly published work.
  [[nodiscard]] bool should_notify() const noexcept;
  /// Picks a parked worker to wake, counting it unparked and searching. Returns its index,
  /// or -1 when no worker should be woken after all.
  [[nodiscard]] std::ptrdiff_t unpark_one();

  /// A worker wants to search. False when half the workers already do.
  [[nodiscard]] bool transition_worker_to_searching() noexcept;
  /// A searching worker found work. True when it was the last searcher (it must wake one).
  [[nodiscard]] bool transition_worker_from_searching() noexcept;
  /// A worker parks. True when no worker is left searching (it must re-check every queue).
  [[nodiscard]] bool transition_worker_to_parked(std::size_t worker, bool searching);
  /// After a wake-up: true when the worker was unparked by unpark_one (it is now counted
  /// searching); false for a spurious wake-up.
  [[nodiscard]] bool transition_worker_from_parked(std::size_t worker);
  /// A parked worker that woke with work of its own (readiness it found while sleeping in the
  /// reactor's loop) counts itself unparked and searching, as unpark_one would have.
  void unpark_self(std::size_t worker);

  [[nodiscard]] std::uint32_t searching() const noexcept;
  [[nodiscard]] std::uint32_t unparked() const noexcept;

 private:
  static constexpr std::uint64_t k_searching_one = 1;
  static constexpr std::uint64_t k_unparked_one = std::uint64_t{1} << 32;

  const std::uint32_t m_workers;
  alignas(64) std::atomic<std::uint64_t> m_state;
  std::mutex m_mutex;
  std::vector<std::size_t> m_sleepers;
  std::vector<bool> m_parked;
};

}  // namespace weft::detail
