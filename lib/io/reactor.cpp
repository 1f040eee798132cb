// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/io/reactor.hpp; the comments here name each operation's partner.
#include "io/reactor.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "io/uv_error.hpp"
#include "sched/core.hpp"
#include "sched/parker.hpp"

namespace weft::detail {

Reactor::Reactor() {
  if (int rc = ::uv_loop_init(&m_loop); rc != 0) throw uv_error(rc, "uv_loop_init");
  // The wake-up handle only interrupts epoll_wait; the holder drains the ops after uv_run.
  if (int rc = ::uv_async_init(&m_loop, &m_wakeup, [](uv_async_t*) {}); rc != 0) {
    ::uv_loop_close(&m_loop);
    throw uv_error(rc, "uv_async_init");
  }
  m_timers.init(&m_loop);
  m_ops.reserve(k_submit_drain_budget);
  m_draining.reserve(k_submit_drain_budget);
}

Reactor::~Reactor() {
  // Every Sleep and signal held a reference, so only the wake-up handle, the timer queue's
  // handle (its queue empty) and the pooled (all stopped) poll handles are left to close.
  ::uv_close(reinterpret_cast<uv_handle_t*>(&m_wakeup), nullptr);
  m_timers.close();
  for (uv_poll_t* poll : m_polls) {
    if (poll != nullptr) {
      ::uv_close(reinterpret_cast<uv_handle_t*>(poll),
                 [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
    }
  }
  ::uv_run(&m_loop, UV_RUN_DEFAULT);
  ::uv_loop_close(&m_loop);
}

uv_poll_t* Reactor::poll_handle(int fd, int& error) noexcept {
  if (fd < 0) {
    error = UV_EBADF;
    return nullptr;
  }
  const auto index = static_cast<std::size_t>(fd);
  if (index >= m_polls.size()) {
    try {
      m_polls.resize(std::max(index + 1, 2 * m_polls.size()), nullptr);
    } catch (const std::bad_alloc&) {
      error = UV_ENOMEM;
      return nullptr;
    }
  }
  if (m_polls[index] == nullptr) {
    auto* poll = new (std::nothrow) uv_poll_t;
    if (poll == nullptr) {
      error = UV_ENOMEM;
      return nullptr;
    }
    if (int rc = ::uv_poll_init(&m_loop, poll, fd); rc != 0) {
      delete poll;
      error = rc;
      return nullptr;
    }
    m_polls[index] = poll;
  }
  return m_polls[index];
}

void Reactor::retain() noexcept {
  // relaxed: a new reference is made from one that keeps the reactor alive.
  m_refs.fetch_add(1, std::memory_order_relaxed);
}

void Reactor::release() noexcept {
  // acq_rel: the last owner sees every other owner's writes before deleting; pairs with itself.
  if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

bool Reactor::try_take_token() noexcept {
  // seq_cst (both): the acquire half of the token (pairs with the store in give_token_up),
  // and part of the Dekker pairs with give_token_up's re-check of m_has_ops. The plain load
  // first keeps a contended token's cache line shared instead of bouncing on failed swaps.
  return !m_driver.load(std::memory_order_seq_cst) &&
         !m_driver.exchange(true, std::memory_order_seq_cst);
}

void Reactor::give_token_up(std::size_t budget) noexcept {
  std::size_t releases = 0;
  for (;;) {
    // acquire: pairs with the release store in mark_runtime_stopped.
    if (m_runtime_stopped.load(std::memory_order_acquire)) {
      // Nobody else will run the loop: finish the closes the ops just started. Twice: an op
      // that woke a task called uv_stop, which makes the first uv_run return at once.
      ::uv_run(&m_loop, UV_RUN_NOWAIT);
      ::uv_run(&m_loop, UV_RUN_NOWAIT);
    }
    releases += std::exchange(m_deferred_releases, 0);
    // seq_cst: releases the loop to the next holder (its exchange in try_take_token), and is
    // the store half of the Dekker pair with submit's queue-then-take.
    m_driver.store(false, std::memory_order_seq_cst);
    // seq_cst: the load half of that pair; a submitter that failed to take the token pushed
    // its op before, so either we see it here or it took the token after our store.
    if (!m_has_ops.load(std::memory_order_seq_cst)) break;
    // A submitter whose budget is spent leaves the rest queued. Nobody sleeps in the loop
    // (we held the token), so nobody needs waking: the next worker to park takes the token
    // and drains before it sleeps, and a busy worker drains at its next loop turn, which
    // is the bound readiness already has. Once the runtime has stopped nobody would.
    // seq_cst: a Dekker pair with mark_runtime_stopped's store-then-take. Either we see the
    // stop here (after giving the token up) and drain everything, or it takes the token.
    if (m_runtime_stopped.load(std::memory_order_seq_cst)) budget = k_unbounded;
    if (budget == 0) break;
    if (!try_take_token()) break;
    drain_ops(budget);
  }
  for (; releases != 0; --releases)
    release();
}

bool Reactor::drain_ops(std::size_t& budget) noexcept {
  // seq_cst: pairs with the store in submit (see the invariants in the header).
  if (!m_has_ops.load(std::memory_order_seq_cst)) return true;
  bool took_all;
  {
    std::lock_guard lock(m_ops_mutex);
    took_all = m_ops.size() <= budget;
    if (took_all) {
      std::swap(m_ops, m_draining);
    } else {
      // The oldest first; the rest keep their order at the head of the queue. Both vectors
      // hold at least k_submit_drain_budget ops (reserved, and swapping keeps capacities),
      // so this copy does not allocate.
      const auto taken = m_ops.begin() + static_cast<std::ptrdiff_t>(budget);
      m_draining.assign(m_ops.begin(), taken);
      m_ops.erase(m_ops.begin(), taken);
    }
    // relaxed: under the mutex, which orders it with the next push. Left true when ops stay
    // queued; the holder that drains them sees it through the token (its acquire exchange).
    m_has_ops.store(!took_all, std::memory_order_relaxed);
  }
  if (budget != k_unbounded) budget -= m_draining.size();
  for (const Op& op : m_draining)
    op.apply(*this, op.target);
  m_draining.clear();
  return took_all;
}

void Reactor::drain_ops() noexcept {
  std::size_t unbounded = k_unbounded;
  (void)drain_ops(unbounded);
}

void Reactor::enqueue(Op op) noexcept {
  std::lock_guard lock(m_ops_mutex);
  m_ops.push_back(op);
  // seq_cst: the store half of both Dekker pairs (with give_token_up and park_in_loop).
  m_has_ops.store(true, std::memory_order_seq_cst);
}

void Reactor::submit(Op op) noexcept {
  if (try_take_token()) {
    // Earlier ops first: they may concern the same handle. A task's poll applies at most
    // k_submit_drain_budget of them (docs/design.md, "A submitter's drain is bounded").
    std::size_t budget = k_submit_drain_budget;
    if (drain_ops(budget)) {
      op.apply(*this, op.target);
      give_token_up(budget);
      return;
    }
    // Ops older than ours stay queued, so ours joins them, and the holder that applies it
    // may release the last reference meanwhile: keep one of our own, as below.
    retain();
    enqueue(op);
    give_token_up(0);
    release();
    return;
  }
  // Once queued, the op (and the reference its target holds) is the holder's to apply and
  // release; hold a reference of our own for the rest of this call, or the holder could free
  // the reactor under us (a socket closed after its runtime is gone holds the last one).
  retain();
  enqueue(op);
  // seq_cst: read after enqueue's store; if the holder sleeps in epoll_wait, wake it.
  if (m_blocking.load(std::memory_order_seq_cst)) wake_loop();
  if (try_take_token()) {
    // Still a task's poll: the same budget as above. Our op is queued, so it is applied within
    // the budget or left, in order, to the loop's next driver.
    std::size_t budget = k_submit_drain_budget;
    (void)drain_ops(budget);
    give_token_up(budget);
  }
  release();
}

bool Reactor::park_in_loop(Parker& parker) {
  // The token's holder may be a thread that only applies an op and leaves (another worker's
  // submit or busy poll, or a thread that is not a worker at all). Sleeping on the futex
  // then would leave nobody in the loop: timers and I/O would go unseen. So wait for such a
  // holder to leave, and give up only when the holder sleeps in the loop itself.
  while (!try_take_token()) {
    // seq_cst: pairs with the seq_cst store of m_blocking before the holder's uv_run.
    if (m_blocking.load(std::memory_order_seq_cst)) return false;
    std::this_thread::yield();
  }
  drain_ops();
  if (parker.enter_loop(*this)) {
    for (;;) {
      // seq_cst: the store half of the Dekker pair with submit's read of m_blocking.
      m_blocking.store(true, std::memory_order_seq_cst);
      // seq_cst: the load half; an op queued before we announced the sleep is applied first,
      // so that the sleep already watches what it asks for.
      if (!m_has_ops.load(std::memory_order_seq_cst)) break;
      // relaxed: not sleeping after all; the seq_cst store above is redone before we sleep.
      m_blocking.store(false, std::memory_order_relaxed);
      drain_ops();
    }
    ::uv_run(&m_loop, UV_RUN_ONCE);
    // relaxed: only avoids needless wake-ups; a stale true costs one uv_async_send.
    m_blocking.store(false, std::memory_order_relaxed);
    (void)parker.leave_loop();
  }
  drain_ops();
  give_token_up();
  return true;
}

void Reactor::poll_without_blocking() {
  // relaxed: an estimate; a handle armed a moment ago is seen at the next interval.
  if (m_waiting.load(std::memory_order_relaxed) == 0 &&
      !m_has_ops.load(std::memory_order_relaxed)) {
    return;
  }
  if (!try_take_token()) return;
  drain_ops();
  ::uv_run(&m_loop, UV_RUN_NOWAIT);
  drain_ops();
  give_token_up();
}

void Reactor::wake_loop() noexcept {
  ::uv_async_send(&m_wakeup);
}

void Reactor::mark_runtime_stopped() noexcept {
  // seq_cst: pairs with the acquire load at the top of give_token_up, and is the store half
  // of the Dekker pair with its seq_cst load after the token is given up (the take below
  // is the load half).
  m_runtime_stopped.store(true, std::memory_order_seq_cst);
  // Run the loop once now, so handles closed during the last polls finish closing.
  if (try_take_token()) {
    drain_ops();
    give_token_up();
  }
}

void Reactor::add_waiting(int delta) noexcept {
  // relaxed: written by the token's holder only; read as an estimate (poll_without_blocking).
  m_waiting.store(m_waiting.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

Reactor& current_reactor() {
  Core* core = current_core();
  if (core == nullptr) {
    throw std::logic_error("weft: sockets and timers can only be awaited inside a weft runtime");
  }
  return core->reactor();
}

}  // namespace weft::detail
