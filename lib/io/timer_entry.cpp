#include "io/timer_entry.hpp"

#include <mutex>
#include <utility>

namespace weft::detail {

TimerEntry::TimerEntry(Reactor& reactor, Clock::time_point deadline, const Waker& waker)
    : LoopEntry(reactor), m_waker(waker), m_deadline(deadline) {
  m_reactor.submit({&TimerEntry::apply_start, this});
}

bool TimerEntry::fired(const Waker& waker) {
  std::lock_guard lock(m_lock);
  if (m_fired) return true;
  if (!m_waker || !m_waker->will_wake(waker)) m_waker.emplace(waker);
  return false;
}

void TimerEntry::restart(Clock::time_point deadline, const Waker& waker) {
  {
    std::lock_guard lock(m_lock);
    m_fired = false;
    m_deadline = deadline;
    m_waker.emplace(waker);
  }
  m_reactor.submit({&TimerEntry::apply_start, this});
}

void TimerEntry::cancel() noexcept {
  std::optional<Waker> dropped;
  {
    std::lock_guard lock(m_lock);
    dropped.swap(m_waker);
  }
  close_and_release();
}

void TimerEntry::apply_start(Reactor& reactor, void* self_ptr) noexcept {
  auto* self = static_cast<TimerEntry*>(self_ptr);
  if (!self->m_initialized) {
    ::uv_timer_init(reactor.loop(), &self->m_handle);  // cannot fail on Linux
    self->m_handle.data = self;
    self->m_initialized = true;
  }
  Clock::time_point deadline;
  {
    std::lock_guard lock(self->m_lock);
    deadline = self->m_deadline;
  }
  // Round up, so that the timer fires at or after the deadline but for libuv's own rounding
  // of its clock (which the future's re-check covers).
  const auto remaining = deadline - Clock::now();
  const auto millis = remaining.count() <= 0
                          ? std::uint64_t{0}
                          : static_cast<std::uint64_t>(
                                std::chrono::ceil<std::chrono::milliseconds>(remaining).count());
  ::uv_update_time(reactor.loop());
  ::uv_timer_start(&self->m_handle, &TimerEntry::on_timer, millis, 0);
  self->set_active(true);
}

void TimerEntry::on_timer(uv_timer_t* handle) noexcept {
  auto* self = static_cast<TimerEntry*>(handle->data);
  self->set_active(false);
  std::optional<Waker> woken;
  {
    std::lock_guard lock(self->m_lock);
    self->m_fired = true;
    woken.swap(self->m_waker);
  }
  if (woken) {
    std::move(*woken).wake();
    self->m_reactor.after_wake();
  }
}

}  // namespace weft::detail
