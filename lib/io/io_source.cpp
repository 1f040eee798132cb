#include "io/io_source.hpp"

#include <unistd.h>

#include <mutex>
#include <utility>

#include "io/uv_error.hpp"

namespace weft::detail {
namespace {

constexpr unsigned k_both = IoSource::k_read | IoSource::k_write;

int uv_events(unsigned directions) noexcept {
  int events = 0;
  if ((directions & IoSource::k_read) != 0) events |= UV_READABLE;
  if ((directions & IoSource::k_write) != 0) events |= UV_WRITABLE;
  return events;
}

std::size_t slot(unsigned direction) noexcept {
  return direction == IoSource::k_read ? 0 : 1;
}

}  // namespace

IoSource::IoSource(Reactor& reactor, int fd) : m_reactor(reactor), m_fd(fd) {
  m_reactor.retain();
}

IoSource::~IoSource() = default;

void IoSource::wait(unsigned direction, const Waker& waker) {
  bool submit = false;
  {
    std::lock_guard lock(m_lock);
    if (m_watch_error != 0) throw uv_error(m_watch_error, "watch descriptor for readiness");
    std::optional<Waker>& stored = m_wakers[slot(direction)];
    if (!stored || !stored->will_wake(waker)) stored.emplace(waker);
    if ((m_wanted & direction) == 0) {
      m_wanted |= direction;
      submit = !std::exchange(m_sync_queued, true);
    }
  }
  if (submit) m_reactor.submit({&IoSource::apply_sync, this});
}

void IoSource::cancel_wait(unsigned direction) noexcept {
  std::optional<Waker> dropped;
  std::lock_guard lock(m_lock);
  // The waker is destroyed after the lock is released (declared before the guard).
  dropped.swap(m_wakers[slot(direction)]);
}

void IoSource::close() noexcept {
  m_reactor.submit({&IoSource::apply_close, this});
}

void IoSource::apply_sync(Reactor& reactor, void* self_ptr) noexcept {
  auto* self = static_cast<IoSource*>(self_ptr);
  unsigned wanted;
  {
    std::lock_guard lock(self->m_lock);
    self->m_sync_queued = false;
    wanted = self->m_wanted;
  }
  if (self->m_poll == nullptr) {
    int error = 0;
    self->m_poll = reactor.poll_handle(self->m_fd, error);
    if (self->m_poll == nullptr) {
      self->fail_watch(error);
      return;
    }
    self->m_poll->data = self;
  }
  self->sync_armed(wanted);
}

void IoSource::fail_watch(int error) noexcept {
  // The descriptor cannot be watched. Wake the waiters; their retried system call reports
  // the socket's own error if it has one, and otherwise their next wait throws this one.
  std::optional<Waker> woken[2];
  {
    std::lock_guard lock(m_lock);
    m_watch_error = error;
    woken[0].swap(m_wakers[0]);
    woken[1].swap(m_wakers[1]);
    m_wanted = 0;
  }
  for (auto& waker : woken) {
    if (waker) {
      std::move(*waker).wake();
      m_reactor.after_wake();  // uv_stop outside uv_run: the next uv_run returns at once
    }
  }
}

void IoSource::sync_armed(unsigned wanted) noexcept {
  if (wanted == m_armed) return;
  if (wanted == 0) {
    ::uv_poll_stop(m_poll);
    m_reactor.add_waiting(-1);
  } else {
    if (int rc = ::uv_poll_start(m_poll, uv_events(wanted), &IoSource::on_poll); rc != 0) {
      // As for a failed init. Stopped, whatever libuv left it as, the handle is disarmed.
      ::uv_poll_stop(m_poll);
      if (m_armed != 0) m_reactor.add_waiting(-1);
      m_armed = 0;
      fail_watch(rc);
      return;
    }
    if (m_armed == 0) m_reactor.add_waiting(1);
  }
  m_armed = wanted;
}

void IoSource::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* self = static_cast<IoSource*>(handle->data);
  if (self == nullptr) return;  // a pooled handle between sockets (stopped: cannot happen)
  unsigned fired = 0;
  if (status < 0) {
    // libuv stops the handle on POLLERR; wake both directions, whose retried system calls
    // report the socket's error.
    fired = k_both;
    if (self->m_armed != 0 && !::uv_is_active(reinterpret_cast<uv_handle_t*>(handle))) {
      self->m_armed = 0;
      self->m_reactor.add_waiting(-1);
    }
  } else {
    if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) fired |= k_read;
    if ((events & UV_WRITABLE) != 0) fired |= k_write;
  }
  std::optional<Waker> woken[2];
  unsigned wanted;
  {
    std::lock_guard lock(self->m_lock);
    for (unsigned direction : {k_read, k_write}) {
      if ((fired & direction) == 0) continue;
      if (self->m_wakers[slot(direction)]) {
        woken[slot(direction)].swap(self->m_wakers[slot(direction)]);
      } else {
        self->m_wanted &= ~direction;  // nobody waits: stop watching this direction
      }
    }
    if (status < 0) self->m_wanted = 0;
    wanted = self->m_wanted;
  }
  self->sync_armed(wanted);
  for (auto& waker : woken) {
    if (waker) {
      std::move(*waker).wake();
      self->m_reactor.after_wake();
    }
  }
}

void IoSource::apply_close(Reactor& reactor, void* self_ptr) noexcept {
  auto* self = static_cast<IoSource*>(self_ptr);
  std::optional<Waker> dropped[2];
  {
    std::lock_guard lock(self->m_lock);
    dropped[0].swap(self->m_wakers[0]);
    dropped[1].swap(self->m_wakers[1]);
  }
  if (self->m_poll != nullptr) {
    // Stopping removes the fd from epoll and drops its events still pending in this loop
    // turn; only then may close(2) release the number for reuse. A handle already stopped
    // (disarmed, or stopped by libuv on POLLERR) did both when it stopped, and libuv would
    // only repeat its EPOLL_CTL_DEL in vain.
    if (self->m_armed != 0) {
      ::uv_poll_stop(self->m_poll);
      reactor.add_waiting(-1);
      self->m_armed = 0;
    }
    self->m_poll->data = nullptr;
  }
  ::close(self->m_fd);
  reactor.release_from_loop();
  delete self;
}

}  // namespace weft::detail
