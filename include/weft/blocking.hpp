// weft::spawn_blocking(f): runs a blocking call on a separate, bounded pool of threads.
//
//   std::string text = co_await weft::spawn_blocking([path] { return read_whole_file(path); });
//
// - f runs on one of the runtime's blocking threads, never on a worker, so the workers keep
//   running tasks meanwhile. Its result, or the exception it threw, comes back at co_await.
// - The pool starts threads on demand, up to RuntimeOptions::max_blocking_threads, and lets
//   a thread go after blocking_keep_alive without work. At most blocking_queue_capacity calls
//   wait for a thread beyond those running.
// - Back-pressure: when the pool is saturated (every thread busy and the queue full),
//   spawn_blocking's future waits for room instead of queueing without bound, in arrival order.
//   try_spawn_blocking returns nullopt instead of waiting.
// - With room in the pool, the call is submitted at once, before the first co_await. Without,
//   the future waits in line for room, and the call is submitted at the poll that follows
//   the grant. Once submitted it runs to the end: destroying the future (abort, select,
//   timeout) only drops the result. A future destroyed before submission submits nothing.
// - Shutdown: the runtime stops taking calls, drops the queued ones (their futures throw
//   TaskCancelled), and waits for running ones up to blocking_shutdown_timeout. Calls still
//   running then are reported through on_blocking_shutdown_timeout, with where each was
//   spawned; their threads finish in the background.
// - With GCC 12, name a capturing lambda before the co_await: `auto f = [path] {...};
//   co_await weft::spawn_blocking(std::move(f));`. GCC 12 miscompiles a capturing lambda
//   temporary inside a co_await operand (docs/design.md, "A GCC 12 bug to write around").
// Thread safety: spawn_blocking may be called from any task on a worker; Runtime::spawn_blocking
// from any thread. A BlockingFuture is used by one thread at a time.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include "weft/source_location.hpp"

#include "weft/error.hpp"
#include "weft/future.hpp"
#include "weft/oneshot.hpp"
#include "weft/sync/semaphore.hpp"

namespace weft {

/// A blocking call still running when the runtime's shutdown deadline passed.
struct BlockingJobReport {
  SourceLocation spawned_at;
  std::chrono::nanoseconds running_for;
};

namespace detail {

class Core;
class BlockingPool;

/// One submitted call; the pool runs it once, or destroys it unrun at shutdown.
class BlockingJob {
 public:
  explicit BlockingJob(SourceLocation spawned_at) noexcept : m_spawned_at(spawned_at) {}
  virtual ~BlockingJob() = default;
  BlockingJob(const BlockingJob&) = delete;
  BlockingJob& operator=(const BlockingJob&) = delete;

  virtual void run() noexcept = 0;
  [[nodiscard]] SourceLocation spawned_at() const noexcept { return m_spawned_at; }

 private:
  SourceLocation m_spawned_at;
};

/// The pool of `core`, or of the calling worker's runtime when null (std::logic_error when
/// called off a worker with a null core).
std::shared_ptr<BlockingPool> blocking_pool(Core* core);
/// Room in the pool: one permit per running or queued call.
Semaphore& blocking_slots(BlockingPool& pool) noexcept;
/// Hands a call to the pool. The caller has taken one slot and forgotten it; the pool gives it
/// back when the call has finished. After shutdown the call is destroyed unrun. Throws
/// std::bad_alloc when the queue cannot grow; the slot is given back and the call destroyed.
void submit_blocking(BlockingPool& pool, std::unique_ptr<BlockingJob> job);

template <class T>
struct BlockingOutcome {
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  std::exception_ptr error;
};

template <class T, class F>
class BlockingCall final : public BlockingJob {
 public:
  BlockingCall(F function, OneshotSender<BlockingOutcome<T>> result, SourceLocation spawned_at)
      : BlockingJob(spawned_at), m_function(std::move(function)), m_result(std::move(result)) {}

  void run() noexcept override {
    BlockingOutcome<T> outcome;
    try {
      if constexpr (std::is_void_v<T>) {
        std::invoke(m_function);
        outcome.value.emplace(true);
      } else {
        outcome.value.emplace(std::invoke(m_function));
      }
    } catch (...) {
      outcome.error = std::current_exception();
    }
    try {
      (void)m_result.send(std::move(outcome));  // false: nobody waits for it any more
    } catch (...) {
      // Moving the result threw; the future then sees the channel close (TaskCancelled).
    }
  }

 private:
  F m_function;
  OneshotSender<BlockingOutcome<T>> m_result;
};

}  // namespace detail

/// The Future of a spawn_blocking call; yields the call's result or rethrows its exception.
/// Throws TaskCancelled when the runtime shut down before the call ran.
template <class T>
class [[nodiscard]] BlockingFuture {
 public:
  using Output = T;

  BlockingFuture(std::shared_ptr<detail::BlockingPool> pool,
                 std::unique_ptr<detail::BlockingJob> job,
                 OneshotReceiver<detail::BlockingOutcome<T>> result, bool has_slot)
      : m_pool(std::move(pool)),
        m_job(std::move(job)),
        m_result(std::move(result)),
        m_slot(detail::blocking_slots(*m_pool).acquire(1)) {
    if (has_slot) submit();
  }

  Poll<T> poll(Context& cx) {
    if (m_job) {
      try {
        auto slot = m_slot.poll(cx);
        if (slot.is_pending()) return pending;
        slot.take().forget();  // the pool gives it back when the call ends
      } catch (const SemaphoreClosed&) {
        m_job.reset();
        throw TaskCancelled();  // the runtime shut down first
      }
      submit();
    }
    Poll<detail::BlockingOutcome<T>> outcome = pending;
    try {
      outcome = m_result.poll(cx);
    } catch (const ChannelClosed&) {
      throw TaskCancelled();  // dropped unrun at shutdown
    }
    if (outcome.is_pending()) return pending;
    detail::BlockingOutcome<T> done = outcome.take();
    if (done.error) std::rethrow_exception(done.error);
    if constexpr (std::is_void_v<T>) {
      return ready();
    } else {
      return Poll<T>(std::move(*done.value));
    }
  }

 private:
  void submit() { detail::submit_blocking(*m_pool, std::move(m_job)); }

  std::shared_ptr<detail::BlockingPool> m_pool;
  std::unique_ptr<detail::BlockingJob> m_job;  ///< until submitted
  OneshotReceiver<detail::BlockingOutcome<T>> m_result;
  AcquireFuture m_slot;
};

namespace detail {

template <class F>
using BlockingResult = std::invoke_result_t<std::decay_t<F>&>;

/// `wait`: whether to return a future that waits for room, or nullopt when there is none.
template <class F>
std::optional<BlockingFuture<BlockingResult<F>>> make_blocking(Core* core, F&& function, bool wait,
                                                               SourceLocation where) {
  using T = BlockingResult<F>;
  std::shared_ptr<BlockingPool> pool = blocking_pool(core);
  const bool has_slot = blocking_slots(*pool).try_take(1);
  if (!has_slot && !wait) return std::nullopt;
  auto [sender, receiver] = oneshot<BlockingOutcome<T>>();
  std::unique_ptr<BlockingJob> job;
  try {
    job = std::make_unique<BlockingCall<T, std::decay_t<F>>>(std::forward<F>(function),
                                                             std::move(sender), where);
  } catch (...) {
    if (has_slot) blocking_slots(*pool).add_permits(1);
    throw;
  }
  return BlockingFuture<T>(std::move(pool), std::move(job), std::move(receiver), has_slot);
}

}  // namespace detail

/// Runs `function` on the blocking pool of the calling worker's runtime (see the top).
/// Throws std::logic_error off a worker; use Runtime::spawn_blocking there.
template <class F>
BlockingFuture<detail::BlockingResult<F>> spawn_blocking(
    F&& function, SourceLocation where = SourceLocation::current()) {
  return std::move(*detail::make_blocking(nullptr, std::forward<F>(function), true, where));
}

/// Like spawn_blocking, but returns nullopt at once when the pool is saturated (or shut down).
template <class F>
std::optional<BlockingFuture<detail::BlockingResult<F>>> try_spawn_blocking(
    F&& function, SourceLocation where = SourceLocation::current()) {
  return detail::make_blocking(nullptr, std::forward<F>(function), false, where);
}

}  // namespace weft
