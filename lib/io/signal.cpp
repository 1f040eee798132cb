#include <csignal>

#include "io/signal_entry.hpp"
#include "sched/core.hpp"
#include "weft/signal.hpp"

namespace weft {

SignalFuture::SignalFuture(int signum) : m_signum(signum) {
  if (detail::current_core() != nullptr) {
    m_entry = new detail::SignalEntry(detail::current_reactor(), signum, nullptr);
  }
}

SignalFuture::~SignalFuture() {
  if (m_entry != nullptr) m_entry->cancel();
}

Poll<void> SignalFuture::poll(Context& cx) {
  if (m_entry == nullptr) {
    m_entry = new detail::SignalEntry(detail::current_reactor(), m_signum, &cx.waker());
  }
  if (m_entry->take_delivery(cx.waker())) return ready();
  return pending;
}

SignalFuture ctrl_c() {
  return SignalFuture(SIGINT);
}

}  // namespace weft
