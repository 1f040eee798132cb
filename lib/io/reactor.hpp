// The reactor: one libuv loop per runtime, driven by whichever thread holds the driver token.
//
// libuv's loop is not thread-safe (only uv_async_send is), so every call into it happens
// while holding the driver token. Who holds it (see docs/design.md, "The reactor"):
// - a worker with nothing to do parks *in the loop*: it blocks in uv_run(UV_RUN_ONCE), which
//   sleeps in epoll_wait until I/O, a timer or an unpark (uv_async_send) arrives. Only one
//   worker parks this way; the others park on their futex.
// - a busy worker polls the loop without blocking every Worker::k_inject_interval ticks, so
//   readiness is seen within a bounded number of task polls even when no worker is idle.
// - a task that must change the loop (arm interest in a socket, arm the timer queue for an
//   earlier deadline, close a handle) submits an Op. If the token is free it applies the op
//   at once, on its own thread; otherwise it queues the op and, when the holder sleeps in
//   epoll_wait, wakes it, and takes the token itself if the holder has left meanwhile.
//   The holder applies queued ops before it sleeps and before it gives the token up; a
//   submitter, on either path, applies at most k_submit_drain_budget of them and leaves the
//   rest, with its own op behind them, to the next worker that parks or takes a loop turn.
//
// Invariants
// - m_driver is the token: exchange(true) takes it, store(false) gives it up. The loop, every
//   uv handle and m_deferred_releases are touched only by the token's holder.
// - Ops apply in submission order: the queue is drained before an op is applied directly,
//   and a partial drain takes the oldest ops and leaves the rest at the head of the queue.
// - Ops left queued by a submitter whose budget is spent are not stranded while the runtime
//   runs: every worker either takes a loop turn within Worker::k_inject_interval ticks or
//   parks, and parking takes the token and drains. After mark_runtime_stopped nobody would,
//   so budgets no longer apply.
// - No op is stranded: a submitter queues, then tries to take the token; a holder gives the
//   token up, then looks at the queue (seq_cst on both sides, a Dekker pair), so one of them
//   sees the other and drains.
// - A holder that is about to sleep sets m_blocking and then looks at the queue; a submitter
//   queues and then reads m_blocking, waking the loop when it is set (the same Dekker pair).
// - A parking worker sleeps on its futex only while another thread sleeps in the loop
//   (m_blocking); a holder that is only passing through is waited out. Otherwise a
//   transient holder (a submit from any thread) could leave nobody in the loop.
// - A submitter that queues an op holds a reference of its own until it returns: the queued
//   op's target reference may be released by the holder meanwhile.
// - The reactor is reference-counted: the Core holds one reference, every socket registration
//   holds one until its close op, every registered Sleep until it is deregistered, and every
//   signal until libuv has closed it (the pooled poll handles and the timer queue's handle
//   are the reactor's own, closed with it). A release that happens
//   inside the loop is deferred until the token is given up, so the reactor is never freed
//   from inside its own uv_run.
// - m_polls belongs to the token holder. A pooled poll handle is started only while the
//   socket that owns its descriptor number is open; it is stopped (and so removed from epoll)
//   before that socket's close(2).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include "io/timer_queue.hpp"

namespace weft::detail {

class Parker;

class Reactor {
 public:
  /// A change to the loop, applied by the token's holder. `target` must stay alive until the
  /// op has run; handles guarantee it by freeing themselves only in libuv's close callback,
  /// which follows every op they submit.
  struct Op {
    void (*apply)(Reactor& reactor, void* target);
    void* target;
  };

  /// How many queued ops one submit applies before it leaves the rest to the loop's next
  /// driver. Unbounded, one task's poll applied thousands under a connect storm (10–64 ms).
  static constexpr std::size_t k_submit_drain_budget = 64;

  Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  void retain() noexcept;
  /// Frees the reactor when this was the last reference.
  void release() noexcept;

  /// Any thread. Applies `op` now if the token is free, else queues it for the holder.
  /// noexcept: callers have changed state the op must complete (a flag that says it is
  /// queued, a descriptor handed over), so the queue failing to grow terminates instead of
  /// leaving that state stuck (docs/design.md, "Exceptions": out of memory).
  void submit(Op op) noexcept;

  /// Worker about to park. Takes the token (waiting out a holder that is only passing
  /// through) and sleeps in the loop until I/O, a timer or an unpark of `parker` (which then
  /// goes through uv_async_send). Returns false without sleeping when another thread already
  /// sleeps in the loop; the caller parks on its futex.
  bool park_in_loop(Parker& parker);
  /// Busy worker: one non-blocking turn of the loop, if the token is free and anything is
  /// registered. Readiness found here wakes tasks onto the caller's queue.
  void poll_without_blocking();
  /// Any thread: makes a uv_run sleeping in this loop return.
  void wake_loop() noexcept;

  /// After the runtime's workers have exited: no worker drives the loop any more, so every
  /// later op also runs the loop once, to finish closing handles.
  void mark_runtime_stopped() noexcept;

  /// Token holder only.
  [[nodiscard]] uv_loop_t* loop() noexcept { return &m_loop; }
  /// Any thread: every pending Sleep of the runtime (see timer_queue.hpp).
  [[nodiscard]] TimerQueue& timers() noexcept { return m_timers; }
  /// Token holder, inside a loop callback that woke a task: makes uv_run return instead of
  /// sleeping. libuv runs due timers before it computes the epoll timeout, so without this a
  /// task woken by a timer would wait in the sleeping worker's queue until the next event.
  void after_wake() noexcept { ::uv_stop(&m_loop); }
  /// Token holder only: the poll handle for descriptor number `fd`, made at its first use and
  /// kept for every later socket that gets the same number (see docs/design.md, "Sockets":
  /// this skips uv_poll_init's ioctl and its epoll ADD/DEL check). Null when libuv refuses
  /// the descriptor, with libuv's error in `error`; allocation failure counts as UV_ENOMEM.
  /// The handle is stopped whenever no socket uses it.
  [[nodiscard]] uv_poll_t* poll_handle(int fd, int& error) noexcept;
  /// Token holder only: a handle's close callback gives its reference back through this.
  void release_from_loop() noexcept { ++m_deferred_releases; }
  /// Token holder only: how many handles wait on the loop (armed sockets, running timers and
  /// signals). Busy workers skip their poll when it is zero.
  void add_waiting(int delta) noexcept;

 private:
  ~Reactor();

  static constexpr std::size_t k_unbounded = static_cast<std::size_t>(-1);

  bool try_take_token() noexcept;
  /// Gives the token up, then drains whatever was queued meanwhile (see the invariants),
  /// applying at most `budget` more ops unless the runtime has stopped.
  void give_token_up(std::size_t budget = k_unbounded) noexcept;
  /// Token holder: applies the queued ops in order, at most `budget` of them (reduced by
  /// the number applied). Returns false when ops that were queued stay queued.
  bool drain_ops(std::size_t& budget) noexcept;
  void drain_ops() noexcept;
  /// Any thread: appends `op` to the queue (under m_ops_mutex) and raises m_has_ops.
  void enqueue(Op op) noexcept;
  void settle_deferred_releases() noexcept;

  uv_loop_t m_loop;
  uv_async_t m_wakeup;
  TimerQueue m_timers{*this};
  alignas(64) std::atomic<bool> m_driver{false};
  std::atomic<bool> m_blocking{false};
  std::atomic<bool> m_has_ops{false};
  std::atomic<bool> m_runtime_stopped{false};
  /// Relaxed: an estimate for poll_without_blocking; written only by the token's holder.
  std::atomic<int> m_waiting{0};
  std::mutex m_ops_mutex;
  std::vector<Op> m_ops;
  std::vector<Op> m_draining;
  /// Indexed by descriptor number; see poll_handle.
  std::vector<uv_poll_t*> m_polls;
  std::size_t m_deferred_releases = 0;
  alignas(64) std::atomic<std::size_t> m_refs{1};
};

/// The reactor of the runtime this thread runs tasks for. Throws std::logic_error elsewhere:
/// sockets and timers can only be awaited inside a weft runtime.
[[nodiscard]] Reactor& current_reactor();

}  // namespace weft::detail
