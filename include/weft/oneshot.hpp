// weft::oneshot<T>(): a channel that carries one value from a Sender to a Receiver.
//
// - The Receiver is a Future: `co_await receiver` yields the value. If the Sender is destroyed
//   without sending, the receiver wakes and throws weft::ChannelClosed.
// - `sender.send(value)` returns false, dropping the value, when the Receiver is gone.
// Each end may live on any thread; the two ends may be used concurrently with each other.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/error.hpp"
#include "weft/future.hpp"

namespace weft {

namespace detail {

/// The state shared by the two ends; the protocol is in lib/sync/oneshot.cpp.
class OneshotCore {
 public:
  enum class RecvStatus { pending, value, closed };

  OneshotCore() noexcept;
  OneshotCore(const OneshotCore&) = delete;
  OneshotCore& operator=(const OneshotCore&) = delete;

  /// Sender, after it stored the value. Returns false if the receiver is gone.
  bool complete_send() noexcept;
  /// Sender, when it is destroyed without having sent.
  void close_send() noexcept;
  [[nodiscard]] bool is_receiver_closed() const noexcept;
  /// Receiver: on pending, the context's waker is stored and woken by the sender.
  RecvStatus poll_recv(Context& cx);
  /// Receiver, when it is destroyed.
  void close_recv() noexcept;
  /// Drops one end's reference; returns true when the caller must delete the state.
  [[nodiscard]] bool release() noexcept;

 protected:
  ~OneshotCore();

 private:
  std::atomic<std::uint32_t> m_state;
  std::atomic<std::uint32_t> m_refs;
  std::optional<Waker> m_receiver_waker;  // owned by whoever the state word says (see .cpp)
};

template <class T>
class OneshotShared final : public OneshotCore {
 public:
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;
  std::optional<Stored> value;
  static void release(OneshotShared* shared) noexcept {
    if (shared != nullptr && shared->OneshotCore::release()) delete shared;
  }
};

}  // namespace detail

template <class T>
class OneshotSender {
 public:
  explicit OneshotSender(detail::OneshotShared<T>* shared) noexcept : m_shared(shared) {}
  OneshotSender(OneshotSender&& other) noexcept
      : m_shared(std::exchange(other.m_shared, nullptr)) {}
  OneshotSender& operator=(OneshotSender&& other) noexcept {
    if (this != &other) {
      reset();
      m_shared = std::exchange(other.m_shared, nullptr);
    }
    return *this;
  }
  ~OneshotSender() { reset(); }

  /// Sends the value; returns false (and drops it) if the receiver is gone or this sender
  /// already sent.
  template <class... Args>
  bool send(Args&&... args) {
    if (m_shared == nullptr || m_shared->is_receiver_closed()) return false;
    if constexpr (std::is_void_v<T>) {
      static_assert(sizeof...(Args) == 0, "oneshot<void>::send takes no value");
      m_shared->value.emplace(true);
    } else {
      m_shared->value.emplace(std::forward<Args>(args)...);
    }
    const bool delivered = m_shared->complete_send();
    detail::OneshotShared<T>::release(std::exchange(m_shared, nullptr));
    return delivered;
  }

  /// True when the receiver has been destroyed, so a send would be dropped.
  [[nodiscard]] bool is_closed() const noexcept {
    return m_shared == nullptr || m_shared->is_receiver_closed();
  }

 private:
  void reset() noexcept {
    if (m_shared == nullptr) return;
    m_shared->close_send();
    detail::OneshotShared<T>::release(std::exchange(m_shared, nullptr));
  }
  detail::OneshotShared<T>* m_shared;
};

template <class T>
class OneshotReceiver {
 public:
  using Output = T;

  explicit OneshotReceiver(detail::OneshotShared<T>* shared) noexcept : m_shared(shared) {}
  OneshotReceiver(OneshotReceiver&& other) noexcept
      : m_shared(std::exchange(other.m_shared, nullptr)) {}
  OneshotReceiver& operator=(OneshotReceiver&& other) noexcept {
    if (this != &other) {
      reset();
      m_shared = std::exchange(other.m_shared, nullptr);
    }
    return *this;
  }
  ~OneshotReceiver() { reset(); }

  /// Ready with the value; throws ChannelClosed when the sender left without sending (or
  /// the value was already received).
  Poll<T> poll(Context& cx) {
    if (m_shared == nullptr) throw ChannelClosed();
    switch (m_shared->poll_recv(cx)) {
      case detail::OneshotCore::RecvStatus::pending:
        return pending;
      case detail::OneshotCore::RecvStatus::closed:
        reset();
        throw ChannelClosed();
      case detail::OneshotCore::RecvStatus::value:
        break;
    }
    if constexpr (std::is_void_v<T>) {
      reset();
      return ready();
    } else {
      T value = std::move(*m_shared->value);
      reset();
      return Poll<T>(std::move(value));
    }
  }

 private:
  void reset() noexcept {
    if (m_shared == nullptr) return;
    m_shared->close_recv();
    detail::OneshotShared<T>::release(std::exchange(m_shared, nullptr));
  }
  detail::OneshotShared<T>* m_shared;
};

/// Returns a connected (sender, receiver) pair.
template <class T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot() {
  auto* shared = new detail::OneshotShared<T>();
  return {OneshotSender<T>(shared), OneshotReceiver<T>(shared)};
}

}  // namespace weft
