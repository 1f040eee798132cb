// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/io/signal_entry.hpp; the comments here name each operation's partner.
#include "io/signal_entry.hpp"

#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "io/uv_error.hpp"

namespace weft::detail {

SignalEntry::SignalEntry(Reactor& reactor, int signum, const Waker* waker)
    : LoopEntry(reactor), m_signum(signum) {
  if (waker != nullptr) m_waker.emplace(*waker);
  m_reactor.submit({&SignalEntry::apply_start, this});
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  // acquire: pairs with the release store in apply_start.
  while (!m_started.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < limit)
    std::this_thread::yield();
}

bool SignalEntry::take_delivery(const Waker& waker) {
  std::lock_guard lock(m_lock);
  if (m_error != 0) throw uv_error(m_error, "signal " + std::to_string(m_signum));
  if (m_deliveries != 0) {
    --m_deliveries;
    return true;
  }
  if (!m_waker || !m_waker->will_wake(waker)) m_waker.emplace(waker);
  return false;
}

void SignalEntry::cancel() noexcept {
  std::optional<Waker> dropped;
  {
    std::lock_guard lock(m_lock);
    dropped.swap(m_waker);
  }
  close_and_release();
}

void SignalEntry::apply_start(Reactor& reactor, void* self_ptr) noexcept {
  auto* self = static_cast<SignalEntry*>(self_ptr);
  int rc = ::uv_signal_init(reactor.loop(), &self->m_handle);
  if (rc == 0) {
    self->m_initialized = true;
    self->m_handle.data = self;
    rc = ::uv_signal_start(&self->m_handle, &SignalEntry::on_signal, self->m_signum);
  }
  if (rc == 0) {
    self->set_active(true);
    // release: pairs with the constructor's acquire load.
    self->m_started.store(true, std::memory_order_release);
    return;
  }
  std::optional<Waker> woken;
  {
    std::lock_guard lock(self->m_lock);
    self->m_error = rc;
    woken.swap(self->m_waker);
  }
  // release: pairs with the constructor's acquire load.
  self->m_started.store(true, std::memory_order_release);
  if (woken) {
    std::move(*woken).wake();
    reactor.after_wake();  // uv_stop outside uv_run: the next uv_run returns at once
  }
}

void SignalEntry::on_signal(uv_signal_t* handle, int) noexcept {
  auto* self = static_cast<SignalEntry*>(handle->data);
  std::optional<Waker> woken;
  {
    std::lock_guard lock(self->m_lock);
    ++self->m_deliveries;
    woken.swap(self->m_waker);
  }
  if (woken) {
    std::move(*woken).wake();
    self->m_reactor.after_wake();
  }
}

}  // namespace weft::detail
