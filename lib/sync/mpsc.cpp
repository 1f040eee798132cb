// The type-independent half of weft::mpsc channels; the protocol is at the top of
// include/weft/sync/mpsc.hpp.
#include <mutex>

#include "weft/sync/mpsc.hpp"

namespace weft::mpsc::detail {

ChannelCore::ChannelCore(std::size_t capacity) : m_capacity(capacity) {}

ChannelCore::~ChannelCore() = default;

void ChannelCore::add_sender() noexcept {
  // relaxed: made from a live sender, so the count cannot reach zero meanwhile.
  m_senders.fetch_add(1, std::memory_order_relaxed);
}

void ChannelCore::remove_sender() noexcept {
  // seq_cst: this sender's messages are published before the count drops, and the decrement
  // is the last sender's store in the Dekker pair with the receiver (see the header).
  if (m_senders.fetch_sub(1, std::memory_order_seq_cst) == 1) notify_receiver();
}

void ChannelCore::register_receiver(const Waker& waker) {
  std::optional<Waker> replaced;  // dropped after the lock
  {
    std::lock_guard lock(m_receiver_lock);
    if (!m_receiver_waker || !m_receiver_waker->will_wake(waker)) {
      replaced = std::exchange(m_receiver_waker, waker);
    }
  }
  // seq_cst: the receiver's store in the Dekker pair; pairs with the load in notify_receiver.
  m_receiver_waiting.store(true, std::memory_order_seq_cst);
}

void ChannelCore::unregister_receiver() noexcept {
  // relaxed: only spares senders a useless wake; a sender that already saw the mark wakes
  // a task that is running or done, which is harmless.
  m_receiver_waiting.store(false, std::memory_order_relaxed);
  std::optional<Waker> waker;
  {
    std::lock_guard lock(m_receiver_lock);
    waker = std::exchange(m_receiver_waker, std::nullopt);
  }
}

void ChannelCore::wake_receiver() noexcept {
  std::optional<Waker> waker;
  {
    std::lock_guard lock(m_receiver_lock);
    waker = std::exchange(m_receiver_waker, std::nullopt);
  }
  if (waker) std::move(*waker).wake();
}

}  // namespace weft::mpsc::detail
