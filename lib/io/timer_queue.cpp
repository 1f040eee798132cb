#include "io/timer_queue.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <utility>

#include "io/reactor.hpp"

namespace weft::detail {
namespace {

/// Wakers taken per lock hold when many timers fire at once; the lock is never held while
/// waking, so a large burst is woken in rounds.
constexpr std::size_t k_fire_batch = 64;

}  // namespace

void TimerQueue::init(uv_loop_t* loop) noexcept {
  ::uv_timer_init(loop, &m_handle);  // cannot fail on Linux
  m_handle.data = this;
}

void TimerQueue::close() noexcept {
  stop_handle();
  ::uv_close(reinterpret_cast<uv_handle_t*>(&m_handle), nullptr);
}

void TimerQueue::stop_handle() noexcept {
  if (!m_handle_active) return;
  ::uv_timer_stop(&m_handle);
  m_handle_active = false;
  m_reactor.add_waiting(-1);
}

void TimerQueue::submit_arm() {
  m_reactor.retain();  // the op's, given back through release_from_loop in apply_arm
  m_reactor.submit({&TimerQueue::apply_arm, this});
}

void TimerQueue::insert(TimerNode& node, const Waker& waker) {
  bool arm;
  {
    std::lock_guard lock(m_lock);
    arm = push_locked(node);  // first: it may throw (bad_alloc) and leave the node alone
    node.waker = waker;
  }
  node.queue = this;
  m_reactor.retain();  // the node's reference, given back by remove()
  if (arm) submit_arm();
}

void TimerQueue::update(TimerNode& node, const Waker& waker) {
  Waker replaced{nullptr, nullptr};  // dropped after the lock: a drop may free a task
  bool arm = false;
  {
    std::lock_guard lock(m_lock);
    if (node.heap_index == TimerNode::k_not_queued) {
      // Fired: the loop pops a node only once its deadline has passed by steady_clock, so
      // the owner finds it ready; this is for a clock that stepped back, if one ever does.
      arm = push_locked(node);
      node.waker = waker;
    } else if (!node.waker.will_wake(waker)) {
      replaced = std::exchange(node.waker, waker);
    }
  }
  if (arm) submit_arm();
}

void TimerQueue::remove(TimerNode& node) noexcept {
  {
    Waker dropped{nullptr, nullptr};
    {
      std::lock_guard lock(m_lock);
      if (node.heap_index != TimerNode::k_not_queued) erase_locked(node.heap_index);
      dropped.swap(node.waker);
    }
  }
  node.queue = nullptr;
  m_reactor.release();  // last: it may free the reactor, and this queue with it
}

void TimerQueue::relocate(TimerNode& from, TimerNode& to) noexcept {
  {
    std::lock_guard lock(m_lock);
    to.deadline = from.deadline;
    to.heap_index = std::exchange(from.heap_index, TimerNode::k_not_queued);
    to.waker.swap(from.waker);  // `to` was not registered, so its waker was empty
    if (to.heap_index != TimerNode::k_not_queued) m_heap[to.heap_index].node = &to;
  }
  to.queue = std::exchange(from.queue, nullptr);  // the reactor reference moves with it
}

std::size_t TimerQueue::size() noexcept {
  std::lock_guard lock(m_lock);
  return m_heap.size();
}

void TimerQueue::apply_arm(Reactor& reactor, void* self_ptr) noexcept {
  auto* self = static_cast<TimerQueue*>(self_ptr);
  Clock::time_point earliest;
  {
    std::lock_guard lock(self->m_lock);
    self->m_arm_queued = false;
    earliest = self->m_heap.empty() ? Clock::time_point::max() : self->m_heap.front().deadline;
    self->m_armed_for = earliest;
  }
  self->arm_handle(earliest);
  reactor.release_from_loop();  // the op's reference
}

void TimerQueue::arm_handle(Clock::time_point deadline) noexcept {
  if (deadline == Clock::time_point::max()) {
    stop_handle();
    return;
  }
  // A busy worker may apply this long after the loop last looked at the clock. Round up, so
  // that the handle fires at or after the deadline but for libuv's own truncation of its
  // clock to milliseconds; an early fire finds nothing due and arms again.
  ::uv_update_time(m_reactor.loop());
  const auto remaining = deadline - Clock::now();
  const auto millis = remaining.count() <= 0
                          ? std::uint64_t{0}
                          : static_cast<std::uint64_t>(
                                std::chrono::ceil<std::chrono::milliseconds>(remaining).count());
  ::uv_timer_start(&m_handle, &TimerQueue::on_timer, millis, 0);
  if (!m_handle_active) {
    m_handle_active = true;
    m_reactor.add_waiting(1);
  }
}

void TimerQueue::on_timer(uv_timer_t* handle) noexcept {
  auto* self = static_cast<TimerQueue*>(handle->data);
  self->m_handle_active = false;  // a one-shot that fired
  self->m_reactor.add_waiting(-1);
  std::optional<Waker> fired[k_fire_batch];
  bool woke = false;
  Clock::time_point next;
  for (bool more = true; more;) {
    std::size_t count = 0;
    {
      std::lock_guard lock(self->m_lock);
      const Clock::time_point now = Clock::now();
      while (!self->m_heap.empty() && self->m_heap.front().deadline <= now &&
             count < k_fire_batch) {
        TimerNode* node = self->m_heap.front().node;
        self->erase_locked(0);
        fired[count++].emplace(std::move(node->waker));
      }
      more = !self->m_heap.empty() && self->m_heap.front().deadline <= now;
      next = self->m_heap.empty() ? Clock::time_point::max() : self->m_heap.front().deadline;
      if (!more) self->m_armed_for = next;  // armed below
    }
    for (std::size_t i = 0; i < count; ++i) {
      Waker waker = std::move(*fired[i]);
      fired[i].reset();
      if (waker.vtable() == nullptr) continue;
      std::move(waker).wake();
      woke = true;
    }
  }
  if (woke) self->m_reactor.after_wake();
  self->arm_handle(next);
}

bool TimerQueue::push_locked(TimerNode& node) {
  m_heap.push_back({node.deadline, &node});
  sift_up(m_heap.size() - 1);
  if (m_heap.front().node != &node || node.deadline >= m_armed_for || m_arm_queued) return false;
  m_arm_queued = true;
  return true;
}

void TimerQueue::erase_locked(std::size_t index) noexcept {
  m_heap[index].node->heap_index = TimerNode::k_not_queued;
  const Slot last = m_heap.back();
  m_heap.pop_back();
  if (index == m_heap.size()) return;  // it was the last one
  m_heap[index] = last;
  if (index > 0 && last.deadline < m_heap[(index - 1) / k_arity].deadline) {
    sift_up(index);
  } else {
    sift_down(index);
  }
}

void TimerQueue::sift_up(std::size_t index) noexcept {
  const Slot moving = m_heap[index];
  while (index > 0) {
    const std::size_t parent = (index - 1) / k_arity;
    if (m_heap[parent].deadline <= moving.deadline) break;
    place(index, m_heap[parent]);
    index = parent;
  }
  place(index, moving);
}

void TimerQueue::sift_down(std::size_t index) noexcept {
  const Slot moving = m_heap[index];
  const std::size_t size = m_heap.size();
  for (;;) {
    const std::size_t first = k_arity * index + 1;
    if (first >= size) break;
    const std::size_t end = std::min(first + k_arity, size);
    std::size_t earliest = first;
    for (std::size_t child = first + 1; child < end; ++child) {
      if (m_heap[child].deadline < m_heap[earliest].deadline) earliest = child;
    }
    if (moving.deadline <= m_heap[earliest].deadline) break;
    place(index, m_heap[earliest]);
    index = earliest;
  }
  place(index, moving);
}

void TimerQueue::place(std::size_t index, const Slot& slot) noexcept {
  m_heap[index] = slot;
  slot.node->heap_index = static_cast<std::uint32_t>(index);
}

}  // namespace weft::detail
