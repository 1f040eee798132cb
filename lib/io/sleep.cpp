#include "io/timer_entry.hpp"
#include "weft/time.hpp"

namespace weft {

Sleep& Sleep::operator=(Sleep&& other) noexcept {
  if (this != &other) {
    cancel();
    m_deadline = other.m_deadline;
    m_entry = std::exchange(other.m_entry, nullptr);
  }
  return *this;
}

Poll<void> Sleep::poll(Context& cx) {
  if (Clock::now() >= m_deadline) {
    cancel();
    return ready();
  }
  if (m_entry == nullptr) {
    m_entry = new detail::TimerEntry(detail::current_reactor(), m_deadline, cx.waker());
  } else if (m_entry->fired(cx.waker())) {
    m_entry->restart(m_deadline, cx.waker());  // libuv's millisecond clock fired early
  }
  return pending;
}

void Sleep::cancel() noexcept {
  if (m_entry != nullptr) std::exchange(m_entry, nullptr)->cancel();
}

}  // namespace weft
