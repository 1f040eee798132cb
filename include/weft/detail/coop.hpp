// Cooperative scheduling budget: how many times one poll of a task may find a channel, lock,
// semaphore or socket ready before it must give its worker back.
//
// A producer that always finds room in its channel never suspends, so without a budget it
// would keep its worker for as long as it has messages, and the tasks queued behind it (the
// consumer, perhaps) would wait. The stall detector caught exactly this in mpsc_throughput.
// Tokio solves it the same way (its coop budget of 128).
//
// Invariants: t_coop_budget belongs to its thread. A worker sets it to k_coop_budget before
// each poll and back to k_coop_unlimited after, so code off the workers (block_on_future on an
// ordinary thread, tests polling by hand) is never throttled.
#pragma once

#include <cstdint>

#include "weft/detail/tls_model.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

inline constexpr std::uint32_t k_coop_budget = 128;
inline constexpr std::uint32_t k_coop_unlimited = UINT32_MAX;

WEFT_TLS extern constinit thread_local std::uint32_t t_coop_budget;

/// For leaf futures that may be ready many times in a row. False when this poll's budget is
/// spent: the task has been woken, and the caller must return pending without doing anything.
[[nodiscard]] inline bool coop_proceed(Context& cx) noexcept {
  std::uint32_t& budget = t_coop_budget;
  if (budget == k_coop_unlimited) return true;
  if (budget == 0) {
    cx.waker().wake_by_ref();  // polled again after the tasks queued behind it
    return false;
  }
  --budget;
  return true;
}

}  // namespace weft::detail
