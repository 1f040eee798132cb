// weft::TcpStream: a connected TCP socket whose reads and writes are futures.
//
// Every operation tries its system call first and waits for readiness (through the runtime's
// reactor) only when the call would block; readiness is a hint, so it then tries again. A read
// that answers our own message may wait first instead (ReadStart::after_readiness).
// Errors throw std::system_error (see weft/error.hpp); end of stream is read() returning 0.
// SIGPIPE never fires: writes use MSG_NOSIGNAL, and a write to a reset peer throws EPIPE or
// ECONNRESET.
//
// Rules of use
// - At most one read and one write may be pending at a time (one reader task, one writer
//   task). The stream must outlive its pending futures and must not be moved while one is
//   pending. Dropping a pending future cancels it: nothing was consumed or is lost, except
//   that a write may have written a prefix.
// - Buffers passed to read() and the writes must stay valid until the future completes or is
//   dropped.
// - The stream closes on destruction (or close()). Closing waits for nothing; the descriptor
//   is released once the reactor has stopped watching it, so its number is never reused while
//   an old event for it could still arrive.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "weft/future.hpp"
#include "weft/socket_address.hpp"

namespace weft {

namespace detail {
class IoSource;

/// A future's waker left with a socket's registration, taken back if the future is dropped.
class PendingIo {
 public:
  PendingIo() noexcept = default;
  PendingIo(PendingIo&& other) noexcept
      : m_source(std::exchange(other.m_source, nullptr)), m_direction(other.m_direction) {}
  PendingIo& operator=(PendingIo&&) = delete;
  ~PendingIo() { reset(); }

  /// After EAGAIN, or before a read that waits first: leaves `waker` with `source` for
  /// `direction`, and remembers the wait.
  void wait(IoSource& source, unsigned direction, const Waker& waker);
  /// Forgets the wait after the future has been woken or completed.
  void clear() noexcept { m_source = nullptr; }
  /// Withdraws the waker from the registration.
  void reset() noexcept;

 private:
  IoSource* m_source = nullptr;
  unsigned m_direction = 0;
};
}  // namespace detail

class TcpStream;

/// Where a read begins. `now` makes the system call at once and waits for readiness only if
/// nothing is there: right for a peer that may have sent already. `after_readiness` waits
/// first: for a read that answers our own message (a server's prompt, a client's request),
/// the attempt before the answer could arrive finds nothing, and skipping it saves a system
/// call per exchange. Either way, bytes an earlier read_until kept are handed out at once.
enum class ReadStart : bool { now, after_readiness };

/// How read_until stopped.
enum class ReadUntilEnd {
  delimiter,  ///< found the delimiter; it is the last byte of `bytes`
  eof,        ///< the peer closed first; `bytes` holds what came before (maybe nothing)
  limit,      ///< `max` bytes arrived without the delimiter; `bytes` holds them
};

struct ReadUntilResult {
  std::string bytes;
  ReadUntilEnd end;
};

class [[nodiscard]] ConnectFuture {
 public:
  using Output = TcpStream;
  explicit ConnectFuture(SocketAddress address) noexcept : m_address(address) {}
  ConnectFuture(SocketAddress address, SocketAddress local) noexcept
      : m_address(address), m_local(local), m_bind_local(true) {}
  ConnectFuture(ConnectFuture&& other) noexcept;
  ConnectFuture& operator=(ConnectFuture&&) = delete;
  ~ConnectFuture();
  Poll<TcpStream> poll(Context& cx);

 private:
  SocketAddress m_address;
  SocketAddress m_local;
  bool m_bind_local = false;
  int m_fd = -1;
  detail::IoSource* m_source = nullptr;
  detail::PendingIo m_pending;
};

class [[nodiscard]] ReadFuture {
 public:
  using Output = std::size_t;
  ReadFuture(TcpStream& stream, std::span<char> buffer, ReadStart start = ReadStart::now) noexcept
      : m_stream(&stream), m_buffer(buffer), m_start(start) {}
  Poll<std::size_t> poll(Context& cx);

 private:
  TcpStream* m_stream;
  std::span<char> m_buffer;
  detail::PendingIo m_pending;
  /// after_readiness until the first wait; then now, so that every later poll reads.
  ReadStart m_start;
};

class [[nodiscard]] ReadUntilFuture {
 public:
  using Output = ReadUntilResult;
  ReadUntilFuture(TcpStream& stream, char delimiter, std::size_t max,
                  ReadStart start = ReadStart::now) noexcept
      : m_stream(&stream), m_delimiter(delimiter), m_start(start), m_max(max) {}
  Poll<ReadUntilResult> poll(Context& cx);

 private:
  /// The line at the start of `bytes` (no delimiter in its first `searched` bytes), if the
  /// delimiter or the cap is within them; `taken` is then how many bytes it used.
  std::optional<ReadUntilResult> split(std::string_view bytes, std::size_t searched,
                                       std::size_t& taken) const;

  TcpStream* m_stream;
  char m_delimiter;
  /// As ReadFuture's; beside the delimiter, where it costs no space.
  ReadStart m_start;
  std::size_t m_max;
  detail::PendingIo m_pending;
};

class [[nodiscard]] WriteAllFuture {
 public:
  using Output = void;
  /// What the future does once every byte is written.
  enum class Then : bool { nothing, shutdown_write };
  WriteAllFuture(TcpStream& stream, std::string_view bytes, Then then = Then::nothing) noexcept
      : m_stream(&stream), m_bytes(bytes), m_then(then) {}
  Poll<void> poll(Context& cx);

 private:
  TcpStream* m_stream;
  std::string_view m_bytes;
  detail::PendingIo m_pending;
  Then m_then;
};

class TcpStream {
 public:
  /// A stream that is not connected; every operation on it throws.
  TcpStream() noexcept = default;
  /// Adopts a connected, non-blocking socket descriptor.
  explicit TcpStream(int fd) noexcept : m_fd(fd) {}
  TcpStream(TcpStream&& other) noexcept
      : m_fd(std::exchange(other.m_fd, -1)),
        m_source(std::exchange(other.m_source, nullptr)),
        m_buffered(std::move(other.m_buffered)) {}
  TcpStream& operator=(TcpStream&& other) noexcept;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream() {
    // Streams are moved several times on their way into a dialog's frame; the moved-from
    // ones have nothing to close, and skip the call.
    if (m_fd >= 0 || m_source != nullptr) close();
  }

  /// Connects to "HOST:PORT" (numeric, see SocketAddress). Throws std::invalid_argument for a
  /// malformed address; the future throws std::system_error when the connection fails.
  [[nodiscard]] static ConnectFuture connect(std::string_view address);
  [[nodiscard]] static ConnectFuture connect(const SocketAddress& address) noexcept {
    return ConnectFuture(address);
  }
  /// Connects from `local` (port 0 lets the kernel pick one). Load generators use this to
  /// spread connections over several source addresses, such as 127.0.0.2, 127.0.0.3, ...,
  /// multiplying the (source, destination) pairs that TIME_WAIT can tie up.
  [[nodiscard]] static ConnectFuture connect_from(const SocketAddress& address,
                                                  const SocketAddress& local) noexcept {
    return ConnectFuture(address, local);
  }

  /// Reads what is available, at most buffer.size() bytes, waiting until at least one byte
  /// is. Yields 0 at end of stream. `start`: see ReadStart.
  ReadFuture read(std::span<char> buffer, ReadStart start = ReadStart::now) noexcept {
    return ReadFuture(*this, buffer, start);
  }
  /// Reads until `delimiter`, end of stream, or `max` bytes, whichever comes first. Bytes
  /// that arrive after the delimiter are kept for the next read or read_until. At most
  /// `max` bytes plus one socket read are ever buffered. `start`: see ReadStart.
  ReadUntilFuture read_until(char delimiter, std::size_t max,
                             ReadStart start = ReadStart::now) noexcept {
    return ReadUntilFuture(*this, delimiter, max, start);
  }
  /// Writes every byte, waiting while the socket's send buffer is full.
  WriteAllFuture write_all(std::string_view bytes) noexcept { return WriteAllFuture(*this, bytes); }
  /// Writes every byte and then sends FIN, as write_all and shutdown_write would, except that
  /// the last bytes and the FIN leave in one segment: the kernel holds the tail back until
  /// the shutdown. For a server's last reply before it closes, that is one segment fewer for
  /// both ends to process, and the peer's delayed ACK of a lone FIN no longer sets off a
  /// retransmission. Throws as either call does; dropped before it completes, it leaves the
  /// write side open and the held bytes are sent by close() (or a later write).
  WriteAllFuture write_all_and_shutdown_write(std::string_view bytes) noexcept {
    return WriteAllFuture(*this, bytes, WriteAllFuture::Then::shutdown_write);
  }

  /// Sends FIN: the peer reads end of stream, and this side can still read.
  void shutdown_write();
  /// Disables Nagle's algorithm (TCP_NODELAY).
  void set_nodelay(bool enabled);

  [[nodiscard]] SocketAddress peer_addr() const;
  [[nodiscard]] SocketAddress local_addr() const;
  [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
  [[nodiscard]] int native_handle() const noexcept { return m_fd; }

  /// Closes now (idempotent). Pending futures must already be gone.
  void close() noexcept;

 private:
  friend class ConnectFuture;
  friend class ReadFuture;
  friend class ReadUntilFuture;
  friend class WriteAllFuture;

  /// The socket's registration with the current runtime's reactor, made at the first wait.
  detail::IoSource& source();
  int checked_fd(const char* operation) const;
  /// Drops the first `n` bytes of the (non-null) buffer, and the buffer once it is empty.
  void consume_buffered(std::size_t n) noexcept;

  int m_fd = -1;
  detail::IoSource* m_source = nullptr;
  /// Bytes read past a delimiter by read_until, handed out first by the next read. Null when
  /// there are none (nearly always), never an empty string. A pointer rather than a string,
  /// so that moving a stream (into a task's frame, out of an accept) copies no bytes, and a
  /// stream costs 8 bytes for its buffer, not 32.
  std::unique_ptr<std::string> m_buffered;
};

}  // namespace weft
