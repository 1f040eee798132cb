#include "greeter.hpp"

#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

#include "log.hpp"

namespace greeter {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view k_prompt = "Who are you?\n";
constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/// The length of the valid UTF-8 sequence at the start of `bytes`, or minus the length of
/// its maximal invalid subpart (at least one byte).
int utf8_sequence(std::string_view bytes) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  int length;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // no overlong forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int i = 1; i < length; ++i) {
    if (static_cast<std::size_t>(i) >= bytes.size()) return -i;
    const unsigned char next = byte(static_cast<std::size_t>(i));
    if (next < low || next > high) return -i;
    low = 0x80;
    high = 0xBF;
  }
  return length;
}

bool is_descriptor_exhaustion(const std::system_error& error) {
  const int code = error.code().value();
  return code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM;
}

/// A taken slot, given back on destruction: by the dialog when it ends, or by the acceptor
/// when its accept fails or is cancelled by shutdown.
class Slot {
 public:
  explicit Slot(ConnectionSlots& slots) noexcept : m_slots(&slots) {}
  Slot(Slot&& other) noexcept : m_slots(std::exchange(other.m_slots, nullptr)) {}
  Slot& operator=(Slot&&) = delete;
  ~Slot() {
    if (m_slots != nullptr) m_slots->release();
  }

 private:
  ConnectionSlots* m_slots;
};

// Memory per waiting connection. With thousands of clients holding their connections open,
// coroutine frames are most of the server's memory per connection, and GCC gives every local
// and awaiter of a coroutine its own slot for the frame's whole life. So the phases that
// build strings (the prompt's and the reply's writes, the answer) are tasks of their own,
// whose frames exist only while they run, and the wait for the name is a select awaited in
// the dialog's own frame: a child task for it would add a second frame (with its unused
// 80-byte task prefix) to every waiting connection, 576 bytes where the select costs 200.

/// Writes `bytes` within `limit`, so that a client that never reads cannot pin the dialog.
/// The dialog's last write shuts the write side down with it: its FIN leaves in the reply's
/// segment, which saves a segment per dialog and the retransmission a client slow to ACK a
/// lone FIN would set off (docs/benchmarks.md).
weft::Task<void> send(weft::TcpStream& stream, std::string_view bytes,
                      std::chrono::milliseconds limit,
                      weft::WriteAllFuture::Then then = weft::WriteAllFuture::Then::nothing) {
  co_await weft::timeout(limit, weft::WriteAllFuture(stream, bytes, then));
}
constexpr auto k_last = weft::WriteAllFuture::Then::shutdown_write;

/// Replies to a name line: thanks, or a short error for a line over the cap.
weft::Task<void> answer(weft::TcpStream& stream, weft::ReadUntilResult line, const Config& config,
                        Stats& stats) {
  // Named locals, not temporaries inside the co_await: GCC 12 destroys a temporary that a
  // conditional expression creates in a co_await's operand twice.
  std::string reply;
  // The cap counts the name, not its line ending: "\n" or a telnet client's "\r\n".
  std::string_view name_bytes = line.bytes;
  if (line.end == weft::ReadUntilEnd::delimiter) name_bytes.remove_suffix(1);
  if (!name_bytes.empty() && name_bytes.back() == '\r') name_bytes.remove_suffix(1);
  if (line.end == weft::ReadUntilEnd::limit || name_bytes.size() > config.max_name_bytes) {
    stats.too_long.fetch_add(1, std::memory_order_relaxed);
    reply =
        "Your name is too long (at most " + std::to_string(config.max_name_bytes) + " bytes).\n";
    co_await send(stream, reply, config.read_timeout, k_last);
    co_return;
  }
  const std::string name = clean_name(name_bytes);
  reply = config.reply ? config.reply(name) : thanks(name);
  co_await send(stream, reply, config.read_timeout, k_last);
  stats.greeted.fetch_add(1, std::memory_order_relaxed);
}

weft::Task<void> dialog(weft::TcpStream stream, weft::SocketAddress peer, const Config& config,
                        [[maybe_unused]] Slot slot, Stats& stats) {
  struct CountFinished {
    Stats& stats;
    ~CountFinished() { stats.finished.fetch_add(1, std::memory_order_relaxed); }
  } count_finished{stats};
  try {
    co_await send(stream, k_prompt, config.read_timeout);
    // The seed's race of a timer against I/O: a client silent past the read timeout loses.
    // Room for the longest name and "\r\n"; answer() applies the cap to the name alone. The
    // name answers the prompt just sent, so a read now would find nothing: wait first.
    auto line = co_await weft::select(
        stream.read_until('\n', config.max_name_bytes + 2, weft::ReadStart::after_readiness),
        weft::sleep_for(config.read_timeout));
    if (line.index() == 1) {
      stats.timed_out.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
    co_await answer(stream, std::get<0>(std::move(line)), config, stats);
  } catch (const std::exception& error) {
    stats.failed.fetch_add(1, std::memory_order_relaxed);
    if (!config.quiet) {
      log_err(format("connection from %s ended: %s", peer.to_string().c_str(), error.what()));
    }
  }
}

weft::Task<void> accept_loop(weft::TcpListener& listener, const Config& config,
                             ConnectionSlots& slots, Stats& stats) {
  constexpr auto k_first_backoff = 5ms;
  constexpr auto k_max_backoff = 200ms;
  // Out of descriptors, a line says so, and another when accepting works again. A server that
  // sits at its limit may pause and resume for every connection; so a new "pausing" line
  // comes at most once a second, and a long shortage repeats it every 50 pauses.
  constexpr auto k_report_every = 1s;
  constexpr std::uint64_t k_pauses_per_report = 50;
  std::chrono::milliseconds backoff = k_first_backoff;
  std::uint64_t pauses = 0;       // since the last line
  bool reported_pausing = false;  // the last line said "pausing"
  std::optional<std::chrono::steady_clock::time_point> last_pausing_line;
  for (;;) {
    co_await slots.acquire();
    Slot slot(slots);
    weft::Accepted accepted;
    std::optional<std::system_error> failure;
    std::string other_failure;  // an exception of another type: out of memory, most likely
    try {
      accepted = co_await listener.accept();
      backoff = k_first_backoff;
      if (reported_pausing) {
        log_err(format("weft-greeter: accepting again after %llu pause(s)",
                       static_cast<unsigned long long>(std::exchange(pauses, 0))));
        reported_pausing = false;
      }
    } catch (const std::system_error& error) {
      failure = error;  // handled below: a handler cannot co_await
    } catch (const std::exception& error) {
      other_failure = error.what();
    }
    if (!failure && other_failure.empty()) {
      try {
        if (!config.quiet) log_out("connection from " + accepted.peer.to_string());
        (void)weft::spawn(
            dialog(std::move(accepted.stream), accepted.peer, config, std::move(slot), stats));
        stats.accepted.fetch_add(1, std::memory_order_relaxed);
        continue;
      } catch (const std::exception& error) {
        // The dialog could not start (its frame, say, could not be allocated): this
        // connection is shed, closed with `accepted`, and the server carries on.
        other_failure = std::string("dropped a connection: ") + error.what();
        accepted = {};
      }
    }
    if (!other_failure.empty()) {
      // Without a pause, a shortage of memory would fail every accept in a tight loop.
      log_err("weft-greeter: " + other_failure);
    } else if (failure) {
      if (is_descriptor_exhaustion(*failure)) {
        // Level-triggered readiness would report the queued connection again at once:
        // wait instead, and let the connection wait in the kernel's backlog meanwhile.
        stats.descriptor_exhaustion.fetch_add(1, std::memory_order_relaxed);
        ++pauses;
        const auto now = std::chrono::steady_clock::now();
        const bool due = reported_pausing
                             ? pauses % k_pauses_per_report == 0
                             : !last_pausing_line || now - *last_pausing_line >= k_report_every;
        if (due) {
          log_err(format("weft-greeter: %s; pausing accept (%llu pause(s) so far)", failure->what(),
                         static_cast<unsigned long long>(pauses)));
          reported_pausing = true;
          last_pausing_line = now;
        }
      } else {
        log_err(format("weft-greeter: %s", failure->what()));
      }
    }
    { Slot given_back = std::move(slot); }
    co_await weft::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, k_max_backoff);
  }
}

}  // namespace

std::string thanks(std::string_view name) {
  std::string reply;
  reply.reserve(name.size() + 26);
  reply.append("Thanks for dialing in, ").append(name).append("!\n");
  return reply;
}

std::string clean_name(std::string_view raw) {
  while (!raw.empty() && is_space(raw.front()))
    raw.remove_prefix(1);
  while (!raw.empty() && is_space(raw.back()))
    raw.remove_suffix(1);
  std::string clean;
  clean.reserve(raw.size());
  while (!raw.empty()) {
    // The longest valid run is copied at once: most names are valid UTF-8 (plain ASCII,
    // mostly), and then this loop runs once.
    std::size_t valid = 0;
    int length = 0;
    while (valid < raw.size() && (length = utf8_sequence(raw.substr(valid))) > 0)
      valid += static_cast<std::size_t>(length);
    clean.append(raw.substr(0, valid));
    raw.remove_prefix(valid);
    if (raw.empty()) break;
    clean.append(k_replacement);  // for the invalid sequence, of -length bytes, that ended the run
    raw.remove_prefix(static_cast<std::size_t>(-length));
  }
  return clean;
}

weft::Poll<void> ConnectionSlots::Acquire::poll(weft::Context& cx) {
  std::lock_guard lock(m_slots->m_mutex);
  if (m_slots->m_in_use < m_slots->m_limit) {
    ++m_slots->m_in_use;
    m_slots->m_acquirer.reset();
    return weft::ready();
  }
  m_slots->m_acquirer = cx.waker();
  return weft::pending;
}

weft::Poll<void> ConnectionSlots::Idle::poll(weft::Context& cx) {
  std::lock_guard lock(m_slots->m_mutex);
  if (m_slots->m_in_use == 0) {
    m_slots->m_idle_waiter.reset();
    return weft::ready();
  }
  m_slots->m_idle_waiter = cx.waker();
  return weft::pending;
}

void ConnectionSlots::release() {
  std::optional<weft::Waker> acquirer;
  std::optional<weft::Waker> idle_waiter;
  {
    std::lock_guard lock(m_mutex);
    --m_in_use;
    acquirer.swap(m_acquirer);
    if (m_in_use == 0) idle_waiter.swap(m_idle_waiter);
  }
  if (acquirer) std::move(*acquirer).wake();
  if (idle_waiter) std::move(*idle_waiter).wake();
}

std::size_t ConnectionSlots::in_use() {
  std::lock_guard lock(m_mutex);
  return m_in_use;
}

weft::Task<void> serve(weft::TcpListener& listener, const Config& config, ConnectionSlots& slots,
                       Stats& stats, weft::Task<void> stop) {
  // `stop` comes first: select is biased, and shutdown must never starve behind accepts.
  (void)co_await weft::select(std::move(stop), accept_loop(listener, config, slots, stats));
  listener.close();  // new clients are refused from here on
  const std::size_t in_flight = slots.in_use();
  if (!config.quiet) {
    log_out(format("shutting down: waiting up to %lld ms for %zu dialog(s)",
                   static_cast<long long>(config.drain_timeout.count()), in_flight));
  }
  auto drained = co_await weft::select(slots.idle(), weft::sleep_for(config.drain_timeout));
  if (drained.index() == 1) {
    log_err(format("weft-greeter: drain deadline passed; %zu dialog(s) cancelled", slots.in_use()));
  }
}

}  // namespace greeter
