// The type-erased operations on a spawned task that weft's public templates call. The task
// header and its state word are private to lib/task; see lib/task/state.hpp for the protocol.
//
// Every function here may be called from any thread.
#pragma once

#include <coroutine>
#include <memory>
#include "weft/source_location.hpp"

#include "weft/detail/promise.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

struct TaskHeader;
class Core;

enum class JoinStatus {
  pending,    ///< not finished; the context's waker will be woken when it is
  ready,      ///< finished; the handle now owns the result in the promise
  cancelled,  ///< aborted or shut down before finishing; there is no result
};

/// Polls a join handle. `task` holds the handle's reference.
JoinStatus join_poll(TaskHeader* task, Context& cx);
/// The promise of a finished task; valid until join_drop.
PromiseBase& promise_of(TaskHeader* task) noexcept;
/// Drops the join handle's reference: detaches an unfinished task, or destroys a finished
/// task's result (reporting an exception nobody took).
void join_drop(TaskHeader* task) noexcept;
/// Cancels the task at its next suspension. No effect once it has finished.
void abort_task(TaskHeader* task) noexcept;
[[nodiscard]] bool is_finished(const TaskHeader* task) noexcept;

/// Hands a started-lazy task frame to `core` (the current worker's when null). Returns the
/// task with one reference for the join handle.
TaskHeader* spawn_raw(Core* core, std::coroutine_handle<> frame, PromiseBase& promise,
                      SourceLocation spawned_at);
/// The runtime whose worker is running on this thread, or null.
[[nodiscard]] Core* current_core() noexcept;
/// Throws std::logic_error naming `what` when called on a worker thread, where blocking would
/// stall the runtime and can deadlock it.
void check_may_block(const char* what);

/// Blocks an ordinary thread until woken through its waker.
class ThreadParker {
 public:
  ThreadParker();
  ~ThreadParker();
  ThreadParker(const ThreadParker&) = delete;
  ThreadParker& operator=(const ThreadParker&) = delete;

  /// A waker that unparks this thread; it may outlive the parker.
  [[nodiscard]] const Waker& waker() const noexcept { return m_waker; }
  /// Returns once woken (a wake that came before the call counts).
  void park() noexcept;

 private:
  Waker m_waker;
};

/// Polls `future` on this thread, sleeping between polls, until it is ready.
template <class F>
auto block_on_future(F& future) {
  ThreadParker parker;
  Context cx(parker.waker());
  for (;;) {
    auto poll = future.poll(cx);
    if (poll.is_ready()) return poll.take();
    parker.park();
  }
}

}  // namespace weft::detail
