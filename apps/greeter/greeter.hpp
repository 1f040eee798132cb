// The greeter: the seed's TCP server, hardened. Kept apart from main.cpp so that the tests
// run the same server in-process.
//
// A dialog: the server writes "Who are you?\n", reads one line (the name, until '\n' or end
// of stream: at most max_name_bytes, not counting a "\n" or "\r\n" that ends it), trims the
// surrounding whitespace, replaces invalid UTF-8 with U+FFFD, and replies
// "Thanks for dialing in, NAME!\n".
// - The read races a timer: a client that sends no name within read_timeout is dropped.
// - A name longer than the cap gets one short error line, then the connection closes.
// - Errors (resets, exceptions from the reply hook) end that connection only.
// - At most max_connections dialogs run at once; the acceptor waits for a free slot.
// - Out of descriptors (EMFILE/ENFILE), the acceptor backs off (5 ms doubling to 200 ms)
//   instead of spinning, leaving the connection queued in the kernel, and serves it as soon
//   as a descriptor is free.
// - Shutdown: when `stop` completes, the listener closes, and the dialogs in flight get
//   drain_timeout to finish; serve() then returns and the runtime cancels the rest.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "weft.hpp"

namespace greeter {

struct Config {
  bool quiet = false;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds drain_timeout{5'000};
  std::size_t max_connections = 10'000;
  std::size_t max_name_bytes = 1024;
  /// Builds the reply from the cleaned name; an exception ends that connection only.
  std::function<std::string(std::string_view name)> reply{};
};

/// "Thanks for dialing in, NAME!\n".
[[nodiscard]] std::string thanks(std::string_view name);

/// Trims ASCII whitespace from both ends and replaces each maximal invalid UTF-8 subpart with
/// U+FFFD (as the Unicode standard recommends), so the reply is always valid UTF-8.
[[nodiscard]] std::string clean_name(std::string_view raw);

/// Counts the dialogs in flight, lets the acceptor wait for a free slot, and lets shutdown
/// wait for the count to reach zero. One acceptor and one shutdown waiter at a time.
class ConnectionSlots {
 public:
  explicit ConnectionSlots(std::size_t limit) : m_limit(limit == 0 ? 1 : limit) {}

  class Acquire {
   public:
    using Output = void;
    explicit Acquire(ConnectionSlots& slots) : m_slots(&slots) {}
    weft::Poll<void> poll(weft::Context& cx);

   private:
    ConnectionSlots* m_slots;
  };
  class Idle {
   public:
    using Output = void;
    explicit Idle(ConnectionSlots& slots) : m_slots(&slots) {}
    weft::Poll<void> poll(weft::Context& cx);

   private:
    ConnectionSlots* m_slots;
  };

  /// Ready once a slot is free; takes it.
  Acquire acquire() { return Acquire(*this); }
  /// Gives a slot back (any thread).
  void release();
  /// Ready once no dialog is in flight.
  Idle idle() { return Idle(*this); }
  [[nodiscard]] std::size_t in_use();

 private:
  std::mutex m_mutex;
  const std::size_t m_limit;
  std::size_t m_in_use = 0;
  std::optional<weft::Waker> m_acquirer;
  std::optional<weft::Waker> m_idle_waiter;
};

/// What a running server counts; read by tests and the shutdown message. Counters only: every
/// update is a relaxed fetch_add that publishes nothing else, and readers treat a value as
/// exact only after the dialogs it counts have ended (joined, or seen ended by `finished`).
struct Stats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> greeted{0};
  std::atomic<std::uint64_t> timed_out{0};
  std::atomic<std::uint64_t> too_long{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> descriptor_exhaustion{0};
  /// Dialogs that have ended, however they ended (cancelled ones included).
  std::atomic<std::uint64_t> finished{0};
};

/// Serves `listener` until `stop` completes, then drains (see the top of this file). `slots`
/// and `stats` must outlive the runtime: cancelled dialogs give their slot back as they go.
weft::Task<void> serve(weft::TcpListener& listener, const Config& config, ConnectionSlots& slots,
                       Stats& stats, weft::Task<void> stop);

}  // namespace greeter
