#include "io/reactor.hpp"
#include "io/timer_queue.hpp"
#include "weft/time.hpp"

namespace weft {

Sleep::Sleep(Sleep&& other) noexcept {
  take(other);
}

Sleep& Sleep::operator=(Sleep&& other) noexcept {
  if (this != &other) {
    cancel();
    take(other);
  }
  return *this;
}

void Sleep::take(Sleep& other) noexcept {
  if (other.m_node.queue == nullptr) {
    m_node.deadline = other.m_node.deadline;
  } else {
    other.m_node.queue->relocate(other.m_node, m_node);  // the registration moves too
  }
}

Poll<void> Sleep::poll(Context& cx) {
  if (Clock::now() >= m_node.deadline) {
    cancel();
    return ready();
  }
  if (m_node.queue == nullptr) {
    detail::current_reactor().timers().insert(m_node, cx.waker());
  } else {
    m_node.queue->update(m_node, cx.waker());
  }
  return pending;
}

void Sleep::deregister() noexcept {
  m_node.queue->remove(m_node);
}

}  // namespace weft
