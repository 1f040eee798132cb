// The lifetime of a uv handle on the reactor's loop that a future owns (SignalEntry's), and
// the protocol that frees it. Kept apart from SignalEntry because the protocol is the subtle
// part: the owner and the loop each hold a reference, and either may go last.
//
// Invariants
// - Two references: the owner's (the future; ended by close_and_release) and the loop's
//   (ended in libuv's close callback, or in the close op if the handle never reached the
//   loop). The last one frees the entry and gives its reactor reference back; the close
//   callback runs inside uv_run, so it defers that reactor release (see Reactor).
// - m_handle, m_initialized and m_active belong to the reactor's token holder. The close op
//   follows every op the owner submitted (ops apply in order), so it sees their effects.
// - m_handle.data points at the Derived entry once initialised.
#pragma once

#include <uv.h>

#include <atomic>

#include "io/reactor.hpp"

namespace weft::detail {

template <class Derived, class Handle>
class LoopEntry {
 public:
  LoopEntry(const LoopEntry&) = delete;
  LoopEntry& operator=(const LoopEntry&) = delete;

 protected:
  explicit LoopEntry(Reactor& reactor) noexcept : m_reactor(reactor) { m_reactor.retain(); }
  ~LoopEntry() = default;

  /// Token holder: counts the handle as waiting on the loop, or no longer, so that busy
  /// workers know to give the loop its turns.
  void set_active(bool active) noexcept {
    if (active != m_active) m_reactor.add_waiting(active ? 1 : -1);
    m_active = active;
  }

  /// The owner, once, after taking its waker back: closes the handle on the loop and ends
  /// the owner's reference.
  void close_and_release() noexcept {
    m_reactor.submit({&LoopEntry::apply_close, static_cast<Derived*>(this)});
    release();
  }

  Reactor& m_reactor;
  Handle m_handle;
  /// Token holder: uv_*_init has run, so closing needs uv_close.
  bool m_initialized = false;

 private:
  void release() noexcept {
    // acq_rel: the last of the owner and the loop frees the entry; pairs with itself.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      Reactor& reactor = m_reactor;
      delete static_cast<Derived*>(this);
      reactor.release();
    }
  }

  static void apply_close(Reactor& reactor, void* self) noexcept {
    LoopEntry& entry = *static_cast<Derived*>(self);
    if (!entry.m_initialized) {
      entry.release();  // the loop's reference; the owner still holds one, so no free here
      return;
    }
    entry.set_active(false);
    ::uv_close(reinterpret_cast<uv_handle_t*>(&entry.m_handle), &LoopEntry::on_closed);
    reactor.add_waiting(1);  // the close callback is still to run
  }

  static void on_closed(uv_handle_t* handle) noexcept {
    LoopEntry& entry = *static_cast<Derived*>(handle->data);
    entry.m_reactor.add_waiting(-1);
    // Inside the loop: the reactor must not lose its last reference here (see Reactor).
    entry.m_reactor.retain();
    entry.m_reactor.release_from_loop();
    entry.release();
  }

  bool m_active = false;
  std::atomic<int> m_refs{2};
};

}  // namespace weft::detail
