// weft::mpsc: a bounded multi-producer, single-consumer channel.
//
//   auto [tx, rx] = weft::mpsc::channel<Job>(1024);
//   co_await tx.send(job);                      // waits while the channel is full
//   while (std::optional<Job> job = co_await rx.recv()) run(*job);  // nullopt: closed
//
// - channel<T>(capacity) returns a Sender (copyable: one per producer) and a Receiver
//   (move-only). Messages from one sender arrive in the order sent.
// - send(value) waits while `capacity` messages are queued. Senders are served in arrival
//   order (weft::Semaphore underneath). try_send never waits.
// - recv() yields std::nullopt once every Sender is gone and the queue is drained.
// - Destroying the Receiver closes the channel: waiting and later sends throw
//   weft::ChannelClosed, and the messages still queued are destroyed then (a message a
//   sender publishes while that happens is destroyed with the channel).
// - Cancellation-safe: a recv destroyed before it completes has taken nothing; a send
//   destroyed before it completes has sent nothing (its message is destroyed with it) and
//   holds no slot. reserve() waits for a slot without giving up a message, for a send that
//   must be raced against something else without losing the message.
// - A Sender must outlive its pending send and reserve futures, and the Receiver its recv.
//   A SendPermit from reserve() counts as a sender of its own and may outlive them all.
// Thread safety: each Sender, the Receiver and each future is used by one thread at a time;
// different ones may be used concurrently from any threads.
//
// How a message travels (invariants)
// - The slots form a ring of `capacity` entries. A sender first takes a permit from the
//   capacity semaphore, then claims the next ring index with a fetch_add on m_tail, writes
//   the message and marks the slot full. The receiver reads slots in index order, marks each
//   empty, then gives its permit back. Permits never exceed capacity, so the slot a sender
//   claims has already been emptied; the sender still reads k_empty (acquire) before writing,
//   because the permit it holds may have been given back for a different slot.
// - A slot's state: k_empty (the receiver owns it until a sender claims it), k_full (the
//   sender published a message; the receiver owns it), k_hole (the sender's message
//   constructor threw; the receiver skips the slot and gives its permit back).
// - The receiver sleeps only after setting m_receiver_waiting (seq_cst) and finding the head
//   slot still empty and senders left (seq_cst loads). A sender publishes with a seq_cst store,
//   and the last sender leaves with a seq_cst decrement, before each loads
//   m_receiver_waiting (seq_cst): one side always sees the other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include "weft/detail/coop.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/error.hpp"
#include "weft/future.hpp"
#include "weft/sync/semaphore.hpp"

namespace weft::mpsc {

enum class TrySendStatus {
  sent,    ///< queued; the value was moved from
  full,    ///< no free slot; the value is untouched
  closed,  ///< the receiver is gone; the value is untouched
};

namespace detail {

/// The part of the channel that does not depend on T (lib/sync/mpsc.cpp).
class ChannelCore {
 public:
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  Semaphore& capacity() noexcept { return m_capacity; }

  void add_sender() noexcept;
  /// The last sender to leave wakes the receiver.
  void remove_sender() noexcept;
  [[nodiscard]] bool has_senders() const noexcept {
    // seq_cst: the receiver's half of the Dekker pair with remove_sender (see the top).
    return m_senders.load(std::memory_order_seq_cst) != 0;
  }
  /// Receiver: stores the waker and marks the receiver as waiting. The caller must then check
  /// the head slot and has_senders() once more.
  void register_receiver(const Waker& waker);
  /// Receiver, when that re-check found a message (or the receiver goes): clears the mark and
  /// drops the waker, which would otherwise keep the task's memory until the channel goes.
  void unregister_receiver() noexcept;
  /// Sender, after publishing a slot: wakes the receiver if it sleeps.
  void notify_receiver() noexcept {
    // seq_cst: the sender's half of the Dekker pair (see the top); pairs with the store in
    // register_receiver. The exchange makes one of several senders do the wake.
    if (m_receiver_waiting.load(std::memory_order_seq_cst) &&
        m_receiver_waiting.exchange(false, std::memory_order_acq_rel)) {
      wake_receiver();
    }
  }
  /// Drops one reference (each Sender and the Receiver hold one); true when it was the last.
  [[nodiscard]] bool release() noexcept {
    // acq_rel: the last owner sees everyone's writes before freeing; pairs with itself.
    return m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }
  void retain() noexcept {
    // relaxed: made from a reference that keeps the channel alive.
    m_refs.fetch_add(1, std::memory_order_relaxed);
  }

 protected:
  explicit ChannelCore(std::size_t capacity);
  ~ChannelCore();

 private:
  void wake_receiver() noexcept;

  Semaphore m_capacity;
  std::atomic<std::size_t> m_refs{2};
  std::atomic<std::size_t> m_senders{1};
  alignas(64) std::atomic<bool> m_receiver_waiting{false};
  weft::detail::SpinLock m_receiver_lock;
  std::optional<Waker> m_receiver_waker;  // guarded by m_receiver_lock
};

template <class T>
class Channel final : public ChannelCore {
 public:
  explicit Channel(std::size_t capacity)
      : ChannelCore(capacity), m_slots(new Slot[capacity]), m_size(capacity) {}
  ~Channel() {
    for (std::size_t i = 0; i < m_size; ++i) {
      // relaxed: the last reference's acq_rel decrement ordered every writer before us.
      if (m_slots[i].state.load(std::memory_order_relaxed) == k_full) m_slots[i].value()->~T();
    }
  }

  /// Sender, holding a permit it gives up: publishes the message.
  template <class U>
  void push(U&& value) {
    // relaxed: the permit already reserved a slot; only the index must be unique.
    const std::uint64_t index = m_tail.fetch_add(1, std::memory_order_relaxed);
    Slot& slot = m_slots[index % m_size];
    // The permit proves the slot's previous message has been consumed, but a permit given
    // back for a later slot may be the one we hold, so it need not order that consumption
    // before us. The slot's own state does. acquire: pairs with the release store of k_empty
    // in try_pop. It reads k_empty at once in practice; the loop is for the memory model.
    while (slot.state.load(std::memory_order_acquire) != k_empty)
      std::this_thread::yield();
    std::uint8_t state = k_full;
    try {
      ::new (static_cast<void*>(slot.storage)) T(std::forward<U>(value));
    } catch (...) {
      state = k_hole;
      publish(slot, state);
      throw;
    }
    publish(slot, state);
  }

  /// Receiver only: the next message, if one is published.
  std::optional<T> try_pop() {
    for (;;) {
      Slot& slot = m_slots[m_head % m_size];
      // seq_cst: pairs with the publishing store in push (acquire would do for the value; the
      // receiver's Dekker re-check needs seq_cst, see the top).
      const std::uint8_t state = slot.state.load(std::memory_order_seq_cst);
      if (state == k_empty) return std::nullopt;
      std::optional<T> value;
      {
        // Consumed even if moving the message out throws (the message is then lost with
        // the exception, which is the message type's own failure).
        struct Consume {
          Channel& channel;
          Slot& slot;
          bool full;
          ~Consume() {
            if (full) slot.value()->~T();
            // release: the next sender to claim the slot writes it only after this; pairs
            // with the acquire load in push.
            slot.state.store(k_empty, std::memory_order_release);
            ++channel.m_head;
            channel.capacity().add_permits(1);
          }
        } consume{*this, slot, state == k_full};
        if (state == k_full) value.emplace(std::move(*slot.value()));
      }
      if (value) return value;
    }
  }

 private:
  static constexpr std::uint8_t k_empty = 0;
  static constexpr std::uint8_t k_full = 1;
  static constexpr std::uint8_t k_hole = 2;

  struct Slot {
    std::atomic<std::uint8_t> state{k_empty};
    alignas(T) unsigned char storage[sizeof(T)];
    T* value() noexcept { return std::launder(reinterpret_cast<T*>(storage)); }
  };

  void publish(Slot& slot, std::uint8_t state) noexcept {
    // seq_cst: publishes the message (release, pairs with the load in try_pop) and is the
    // sender's store in the Dekker pair with the receiver (see the top).
    slot.state.store(state, std::memory_order_seq_cst);
    notify_receiver();
  }

  std::unique_ptr<Slot[]> m_slots;
  const std::size_t m_size;
  alignas(64) std::atomic<std::uint64_t> m_tail{0};
  alignas(64) std::uint64_t m_head = 0;  // the receiver's
};

template <class T>
void release(Channel<T>* channel) noexcept {
  if (channel != nullptr && channel->release()) delete channel;
}

}  // namespace detail

template <class T>
class Sender;

/// A reserved slot: send() fills it without waiting; destroying it unused frees the slot.
/// It counts as a sender and keeps the channel alive, so the receiver does not see the
/// channel closed while a permit could still send.
template <class T>
class [[nodiscard]] SendPermit {
 public:
  /// Adopts one permit already taken from the channel's capacity.
  explicit SendPermit(detail::Channel<T>& channel) noexcept : m_channel(&channel) {
    channel.retain();
    channel.add_sender();
  }
  SendPermit(SendPermit&& other) noexcept : m_channel(std::exchange(other.m_channel, nullptr)) {}
  SendPermit& operator=(SendPermit&&) = delete;
  SendPermit(const SendPermit&) = delete;
  SendPermit& operator=(const SendPermit&) = delete;
  ~SendPermit() {
    if (m_channel == nullptr) return;
    m_channel->capacity().add_permits(1);
    leave(m_channel);
  }

  /// Queues the message; the permit is spent. If the receiver is gone the message is
  /// destroyed instead, since nobody could receive it.
  template <class U = T>
  void send(U&& value) {
    if (m_channel == nullptr) throw std::logic_error("weft: send on a spent mpsc::SendPermit");
    detail::Channel<T>* channel = std::exchange(m_channel, nullptr);
    struct Leave {
      detail::Channel<T>* channel;
      ~Leave() { SendPermit::leave(channel); }
    } leave_after{channel};
    if (channel->capacity().is_closed()) {
      channel->capacity().add_permits(1);
      return;
    }
    channel->push(std::forward<U>(value));
  }

 private:
  static void leave(detail::Channel<T>* channel) noexcept {
    channel->remove_sender();
    detail::release(channel);
  }

  detail::Channel<T>* m_channel;
};

/// The Future returned by Sender::reserve; yields a SendPermit.
template <class T>
class [[nodiscard]] ReserveFuture {
 public:
  using Output = SendPermit<T>;

  explicit ReserveFuture(detail::Channel<T>& channel) noexcept
      : m_channel(channel), m_acquire(channel.capacity().acquire(1)) {}

  /// Ready with a permit; throws ChannelClosed when the receiver is gone.
  Poll<SendPermit<T>> poll(Context& cx) {
    try {
      auto permit = m_acquire.poll(cx);
      if (permit.is_pending()) return pending;
      permit.take().forget();  // the SendPermit gives it back or spends it
    } catch (const SemaphoreClosed&) {
      throw ChannelClosed();
    }
    return Poll<SendPermit<T>>(SendPermit<T>(m_channel));
  }

 private:
  detail::Channel<T>& m_channel;
  AcquireFuture m_acquire;
};

/// The Future returned by Sender::send; completes once the message is queued.
template <class T>
class [[nodiscard]] SendFuture {
 public:
  using Output = void;

  template <class U>
  SendFuture(detail::Channel<T>& channel, U&& value)
      : m_channel(channel),
        m_acquire(channel.capacity().acquire(1)),
        m_value(std::forward<U>(value)) {}

  /// Ready once queued; throws ChannelClosed (dropping the message) when the receiver is gone.
  Poll<void> poll(Context& cx) {
    try {
      auto permit = m_acquire.poll(cx);
      if (permit.is_pending()) return pending;
      permit.take().forget();  // spent by the push; the receiver gives it back
    } catch (const SemaphoreClosed&) {
      throw ChannelClosed();
    }
    // The Sender this came from outlives it, so the channel stays open to senders here.
    m_channel.push(std::move(m_value));
    return ready();
  }

 private:
  detail::Channel<T>& m_channel;
  AcquireFuture m_acquire;
  T m_value;
};

template <class T>
class Sender {
 public:
  explicit Sender(detail::Channel<T>* channel) noexcept : m_channel(channel) {}
  Sender(const Sender& other) noexcept : m_channel(other.m_channel) {
    if (m_channel != nullptr) {
      m_channel->retain();
      m_channel->add_sender();
    }
  }
  Sender(Sender&& other) noexcept : m_channel(std::exchange(other.m_channel, nullptr)) {}
  Sender& operator=(Sender other) noexcept {
    std::swap(m_channel, other.m_channel);
    return *this;
  }
  ~Sender() {
    if (m_channel == nullptr) return;
    m_channel->remove_sender();
    detail::release(m_channel);
  }

  /// Waits for a free slot, then queues the message.
  template <class U = T>
  SendFuture<T> send(U&& value) {
    return SendFuture<T>(channel(), std::forward<U>(value));
  }
  /// Queues the message if a slot is free now; moves from `value` only when it returns sent.
  template <class U = T>
  TrySendStatus try_send(U&& value) {
    detail::Channel<T>& ch = channel();
    if (!ch.capacity().try_take(1)) {
      return ch.capacity().is_closed() ? TrySendStatus::closed : TrySendStatus::full;
    }
    ch.push(std::forward<U>(value));  // this Sender keeps the channel open meanwhile
    return TrySendStatus::sent;
  }
  /// Waits for a free slot and holds it, without committing a message yet.
  ReserveFuture<T> reserve() { return ReserveFuture<T>(channel()); }
  /// True once the receiver is gone.
  [[nodiscard]] bool is_closed() const noexcept {
    return m_channel == nullptr || m_channel->capacity().is_closed();
  }

 private:
  detail::Channel<T>& channel() const {
    if (m_channel == nullptr) throw std::logic_error("weft: use of a moved-from mpsc::Sender");
    return *m_channel;
  }

  detail::Channel<T>* m_channel;
};

/// The Future returned by Receiver::recv: the next message, or nullopt once closed.
template <class T>
class [[nodiscard]] RecvFuture {
 public:
  using Output = std::optional<T>;

  explicit RecvFuture(detail::Channel<T>& channel) noexcept : m_channel(channel) {}

  Poll<std::optional<T>> poll(Context& cx) {
    if (!weft::detail::coop_proceed(cx)) return pending;
    if (auto value = m_channel.try_pop()) return Poll<std::optional<T>>(std::move(value));
    if (m_channel.has_senders()) {
      m_channel.register_receiver(cx.waker());
      if (auto value = m_channel.try_pop()) {
        m_channel.unregister_receiver();
        return Poll<std::optional<T>>(std::move(value));
      }
      if (m_channel.has_senders()) return pending;
      m_channel.unregister_receiver();
    }
    // Every sender is gone, and published all it sent before leaving.
    return Poll<std::optional<T>>(m_channel.try_pop());
  }

 private:
  detail::Channel<T>& m_channel;
};

template <class T>
class Receiver {
 public:
  explicit Receiver(detail::Channel<T>* channel) noexcept : m_channel(channel) {}
  Receiver(Receiver&& other) noexcept : m_channel(std::exchange(other.m_channel, nullptr)) {}
  Receiver& operator=(Receiver other) noexcept {
    std::swap(m_channel, other.m_channel);
    return *this;
  }
  Receiver(const Receiver&) = delete;
  /// Closes the channel and destroys the messages queued in it (see the top of this file).
  ~Receiver() {
    if (m_channel == nullptr) return;
    m_channel->capacity().close();
    m_channel->unregister_receiver();
    // Destroyed now, not with the channel: a queued message may hold something its sender
    // waits on (a oneshot for the reply). One published while this drains goes with the
    // channel.
    while (m_channel->try_pop()) {
    }
    detail::release(m_channel);
  }

  /// Waits for the next message; nullopt once every sender is gone and the queue is empty.
  RecvFuture<T> recv() { return RecvFuture<T>(channel()); }
  /// The next message if one is queued now. nullopt means empty or closed; is_closed() tells.
  [[nodiscard]] std::optional<T> try_recv() { return channel().try_pop(); }
  /// True once every sender is gone (messages may still be queued).
  [[nodiscard]] bool is_closed() const noexcept {
    return m_channel == nullptr || !m_channel->has_senders();
  }

 private:
  detail::Channel<T>& channel() const {
    if (m_channel == nullptr) throw std::logic_error("weft: use of a moved-from mpsc::Receiver");
    return *m_channel;
  }

  detail::Channel<T>* m_channel;
};

/// A channel that queues at most `capacity` (at least 1) messages.
template <class T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity) {
  static_assert(std::is_move_constructible_v<T>, "mpsc messages must be movable");
  if (capacity == 0 || capacity > Semaphore::k_max_permits) {
    throw std::invalid_argument("weft::mpsc::channel: capacity must be at least 1");
  }
  auto* channel = new detail::Channel<T>(capacity);
  return {Sender<T>(channel), Receiver<T>(channel)};
}

}  // namespace weft::mpsc
