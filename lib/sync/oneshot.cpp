// The oneshot channel's shared state.
//
// Invariants (m_state bits)
// - k_value_sent: the sender stored the value and will not touch it again; the receiver owns it.
// - k_sender_closed: the sender left without sending.
// - k_receiver_closed: the receiver is gone; a later send drops its value.
// - k_waker_set: m_receiver_waker holds the receiver's waker and belongs to the sender side,
//   which may wake it once it sets k_value_sent or k_sender_closed. While the bit is clear
//   the receiver owns the slot and may overwrite it.
// - m_refs counts the two ends; the last one deletes the state (value and waker with it).
#include <atomic>

#include "weft/oneshot.hpp"

namespace weft::detail {
namespace {

constexpr std::uint32_t k_value_sent = 1u << 0;
constexpr std::uint32_t k_sender_closed = 1u << 1;
constexpr std::uint32_t k_receiver_closed = 1u << 2;
constexpr std::uint32_t k_waker_set = 1u << 3;
constexpr std::uint32_t k_finished = k_value_sent | k_sender_closed;

}  // namespace

OneshotCore::OneshotCore() noexcept : m_state(0), m_refs(2) {}

OneshotCore::~OneshotCore() = default;

bool OneshotCore::complete_send() noexcept {
  // acq_rel: release publishes the value to the receiver (pairs with the acquire loads in
  // poll_recv); acquire pairs with the release in poll_recv that published the waker.
  std::uint32_t prev = m_state.fetch_or(k_value_sent, std::memory_order_acq_rel);
  if ((prev & k_waker_set) != 0 && (prev & k_receiver_closed) == 0) {
    m_receiver_waker->wake_by_ref();
  }
  return (prev & k_receiver_closed) == 0;
}

void OneshotCore::close_send() noexcept {
  // acq_rel: as in complete_send.
  std::uint32_t prev = m_state.fetch_or(k_sender_closed, std::memory_order_acq_rel);
  if ((prev & k_waker_set) != 0 && (prev & (k_receiver_closed | k_value_sent)) == 0) {
    m_receiver_waker->wake_by_ref();
  }
}

bool OneshotCore::is_receiver_closed() const noexcept {
  // relaxed: a hint; complete_send decides with its read-modify-write.
  return (m_state.load(std::memory_order_relaxed) & k_receiver_closed) != 0;
}

OneshotCore::RecvStatus OneshotCore::poll_recv(Context& cx) {
  auto finished = [](std::uint32_t state) {
    return (state & k_value_sent) != 0 ? RecvStatus::value : RecvStatus::closed;
  };
  // acquire: pairs with the release in complete_send / close_send.
  std::uint32_t state = m_state.load(std::memory_order_acquire);
  if ((state & k_finished) != 0) return finished(state);
  if ((state & k_waker_set) != 0) {
    if (m_receiver_waker->will_wake(cx.waker())) return RecvStatus::pending;
    // Take the slot back to replace the waker; fails if the sender finished meanwhile.
    // acquire on failure: pairs with the sender's release. acquire on success too, which the
    // slot does not need: GCC 12 flags a failure order stronger than the success order
    // (-Winvalid-memory-model; C++17 allows it) and substitutes orders of its own choosing.
    while (!m_state.compare_exchange_weak(state, state & ~k_waker_set, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
      if ((state & k_finished) != 0) return finished(state);
    }
  }
  m_receiver_waker = cx.waker();
  // acq_rel: release publishes the waker to the sender (pairs with the acquire in
  // complete_send); acquire sees a value sent meanwhile.
  state = m_state.fetch_or(k_waker_set, std::memory_order_acq_rel);
  if ((state & k_finished) != 0) return finished(state);
  return RecvStatus::pending;
}

void OneshotCore::close_recv() noexcept {
  // relaxed: it publishes nothing the sender reads. The receiver's last use of the value is
  // ordered before a free by the acq_rel decrement of m_refs in release(), which follows.
  m_state.fetch_or(k_receiver_closed, std::memory_order_relaxed);
}

bool OneshotCore::release() noexcept {
  // acq_rel: the last end sees the other's writes before deleting; pairs with itself.
  return m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

}  // namespace weft::detail
