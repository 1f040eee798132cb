// The timer queue: every pending Sleep of a runtime in one 4-ary min-heap ordered by deadline,
// watched by a single uv_timer_t on the reactor's loop that is armed for the earliest one.
//
// Protocol (see docs/design.md, "Timers"):
// - A Sleep registers its node (weft/detail/timer_node.hpp) at its first pending poll:
//   insert() pushes it under the lock. Only when it becomes the earliest deadline and the
//   handle is armed for a later time (or not at all) does insert() submit an arm op; the
//   greeter's read timeouts, all of one length, never do after the first.
// - remove() takes a node out under the lock, with no loop op: if it was the earliest, the
//   handle fires for nothing, finds nothing due, and re-arms for the new earliest.
// - The handle's callback (token holder) pops every node whose deadline has passed by
//   steady_clock, takes their wakers under the lock, wakes them after unlocking, in batches,
//   and re-arms for the next deadline. A node is popped only once its deadline has passed, so
//   the Sleep that polls next is ready. libuv counts whole milliseconds, so the handle is
//   armed for the deadline rounded up, and an early fire simply re-arms.
//
// Invariants
// - A slot's deadline equals its node's: the owner writes a deadline only while the node is
//   out of the heap.
// - m_heap, every queued node's heap_index and waker, m_armed_for and m_arm_queued are
//   guarded by m_lock, which is never held while waking or while calling into libuv.
// - m_handle and m_handle_active belong to the reactor's token holder.
// - m_armed_for is the deadline the handle was last armed for (time_point::max() when it is
//   stopped): a node earlier than it needs an arm op, a later one does not.
// - At most one arm op is queued (m_arm_queued); it holds a reference to the reactor, given
//   back through release_from_loop when it runs.
// Thread safety: insert, update, remove and relocate from any thread (the Sleep's
// owner); init, close and the callbacks on the token holder.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "weft/detail/spin_lock.hpp"
#include "weft/detail/timer_node.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

class Reactor;

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TimerQueue(Reactor& reactor) noexcept : m_reactor(reactor) {}
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  /// Token holder, from the reactor's constructor and destructor.
  void init(uv_loop_t* loop) noexcept;
  void close() noexcept;

  /// The owner: registers `node` (its deadline set, not registered yet) to wake `waker`.
  void insert(TimerNode& node, const Waker& waker);
  /// The owner, polled again before the deadline: keeps `waker` for the node, or inserts the
  /// node again if it had been fired.
  void update(TimerNode& node, const Waker& waker);
  /// The owner: deregisters `node`, wherever it is.
  void remove(TimerNode& node) noexcept;
  /// The owner, moving a registered Sleep: `to` (unregistered) takes `from`'s place.
  void relocate(TimerNode& from, TimerNode& to) noexcept;

  /// How many nodes are queued (tests and metrics).
  [[nodiscard]] std::size_t size() noexcept;

 private:
  static void on_timer(uv_timer_t* handle) noexcept;
  static void apply_arm(Reactor& reactor, void* self) noexcept;
  /// Token holder: arms the handle for `deadline` (stops it for time_point::max()).
  void arm_handle(Clock::time_point deadline) noexcept;
  /// Token holder: stops the handle if it is armed.
  void stop_handle() noexcept;
  /// The owner, after push_locked asked for it: queues the op that re-arms the handle.
  void submit_arm();
  /// Under m_lock: pushes `node` and returns true if the handle must be re-armed for it.
  bool push_locked(TimerNode& node);
  void erase_locked(std::size_t index) noexcept;
  /// A heap entry: the node and a copy of its deadline, so that sifting compares entries
  /// without touching the nodes, which live in coroutine frames all over the heap. Only a
  /// node that moves is written (its heap_index).
  struct Slot {
    Clock::time_point deadline;
    TimerNode* node;
  };
  /// Four children a node: half the levels of a binary heap, and a node's children sit side
  /// by side, in one or two cache lines of slots. At 10,000 queued read timeouts the binary heap of
  /// node pointers was 2% of the greeter's CPU (docs/benchmarks.md, "Scaling").
  static constexpr std::size_t k_arity = 4;

  void sift_up(std::size_t index) noexcept;
  void sift_down(std::size_t index) noexcept;
  void place(std::size_t index, const Slot& slot) noexcept;

  Reactor& m_reactor;
  uv_timer_t m_handle{};
  bool m_handle_active = false;

  SpinLock m_lock;
  std::vector<Slot> m_heap;
  Clock::time_point m_armed_for = Clock::time_point::max();
  bool m_arm_queued = false;
};

}  // namespace weft::detail
