// A Sleep's entry in its runtime's timer queue (lib/io/timer_queue.hpp). It lives inside the
// Sleep, so arming a timer allocates nothing and a waiting connection holds no timer object
// of its own.
//
// Invariants
// - `queue` is null while the node is not registered. Registration (the owner's first
//   pending poll) sets it and takes a reference to the queue's reactor; deregistration (the
//   Sleep is ready or destroyed) clears it and gives the reference back.
// - `heap_index` and `waker` are guarded by the queue's lock. `heap_index` is k_not_queued
//   once the loop has fired the node (or before it is inserted). `deadline` is written by
//   the owner only while the node is not in the heap, and read by the loop under the lock.
// - The owner (the thread polling the Sleep) is the only one that registers, moves or
//   deregisters the node; the loop thread only pops it from the heap and takes its waker.
#pragma once

#include <chrono>
#include <cstdint>

#include "weft/waker.hpp"

namespace weft::detail {

class TimerQueue;

struct TimerNode {
  static constexpr std::uint32_t k_not_queued = UINT32_MAX;

  TimerQueue* queue = nullptr;
  std::chrono::steady_clock::time_point deadline{};
  std::uint32_t heap_index = k_not_queued;
  /// Empty (null vtable) unless a task waits on the node.
  Waker waker{nullptr, nullptr};
};

}  // namespace weft::detail
