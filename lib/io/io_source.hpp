// One file descriptor's registration with the reactor: which directions tasks wait on, the
// waker waiting in each direction, and the uv_poll_t that watches the descriptor.
//
// Protocol (see docs/design.md, "Sockets"):
// - A task tries its system call first and calls wait() only after EAGAIN, except a read
//   started with ReadStart::after_readiness, which calls wait() at its first poll. wait()
//   leaves the task's waker and, if the direction is not armed yet, submits a sync op that
//   arms it.
// - libuv's poll is level-triggered. When readiness fires, the waker is taken and woken, but
//   the direction stays armed: a reader that reads and waits again costs no epoll_ctl. Only an
//   event that finds nobody waiting disarms the direction.
// - close() hands the descriptor to the loop, which stops the poll handle (removing the fd
//   from epoll and discarding its pending events) before it calls close(2). So the fd number
//   cannot be reused, and a new socket cannot be registered under it, while this registration
//   can still see an event.
// - Poll handles are pooled by descriptor number in the reactor: a later socket that gets
//   the same number reuses the stopped handle, re-pointing its data at the new IoSource.
//
// Invariants
// - m_poll and m_armed belong to the reactor's token holder; the owner (the stream's task)
//   only reads m_fd for its system calls.
// - m_wakers, m_wanted, m_sync_queued and m_watch_error are guarded by m_lock, which is never
//   held while waking.
// - Lifetime: the owner's reference ends with close(); the close op frees the object, after
//   every op the owner submitted (ops apply in order).
#pragma once

#include <uv.h>

#include <optional>

#include "io/reactor.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

class IoSource {
 public:
  static constexpr unsigned k_read = 1;
  static constexpr unsigned k_write = 2;

  /// Registers `fd` (non-blocking, owned by the caller until close()) with `reactor`.
  IoSource(Reactor& reactor, int fd);
  IoSource(const IoSource&) = delete;
  IoSource& operator=(const IoSource&) = delete;

  [[nodiscard]] int fd() const noexcept { return m_fd; }

  /// The owner's task, after EAGAIN (or before a read that waits first): wake `waker` when
  /// `direction` may be ready. Throws the error (std::system_error) once the loop has failed
  /// to watch the descriptor: a retried system call would only say EAGAIN again, and the
  /// task would spin.
  void wait(unsigned direction, const Waker& waker);
  /// The owner's task gave up waiting (its future was dropped).
  void cancel_wait(unsigned direction) noexcept;
  /// The owner is done: the loop deregisters the fd, closes it and frees this object.
  void close() noexcept;

 private:
  ~IoSource();

  static void apply_sync(Reactor& reactor, void* self) noexcept;
  static void apply_close(Reactor& reactor, void* self) noexcept;
  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  /// Token holder: makes the armed directions match m_wanted.
  void sync_armed(unsigned wanted) noexcept;
  /// Token holder: libuv refused to watch m_fd; wakes the waiters and keeps `error` for
  /// their next wait.
  void fail_watch(int error) noexcept;

  Reactor& m_reactor;
  const int m_fd;
  /// The reactor's pooled handle for m_fd, taken at the first sync op.
  uv_poll_t* m_poll = nullptr;
  unsigned m_armed = 0;

  SpinLock m_lock;
  std::optional<Waker> m_wakers[2];
  unsigned m_wanted = 0;
  /// A sync op is queued and not yet applied, so another is not needed.
  bool m_sync_queued = false;
  /// Set by the token holder when libuv refused to watch m_fd (a libuv error code); from
  /// then on every wait throws it.
  int m_watch_error = 0;
};

}  // namespace weft::detail
