#include "weft/tcp_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

#include "io/io_source.hpp"
#include "io/uv_error.hpp"
#include "weft/detail/coop.hpp"

namespace weft {
namespace {

constexpr std::size_t k_read_chunk = 4096;

bool would_block(int error) noexcept {
  return error == EAGAIN || error == EWOULDBLOCK;
}

/// Closes a descriptor that may be registered with a reactor.
void close_descriptor(int fd, detail::IoSource* source) noexcept {
  if (source != nullptr) {
    source->close();  // the loop deregisters, then closes the fd
  } else if (fd >= 0) {
    ::close(fd);
  }
}

}  // namespace

namespace detail {
void PendingIo::wait(IoSource& source, unsigned direction, const Waker& waker) {
  source.wait(direction, waker);
  m_source = &source;
  m_direction = direction;
}

void PendingIo::reset() noexcept {
  if (m_source != nullptr) std::exchange(m_source, nullptr)->cancel_wait(m_direction);
}
}  // namespace detail

TcpStream& TcpStream::operator=(TcpStream&& other) noexcept {
  if (this != &other) {
    close();
    m_fd = std::exchange(other.m_fd, -1);
    m_source = std::exchange(other.m_source, nullptr);
    m_buffered = std::move(other.m_buffered);
  }
  return *this;
}

ConnectFuture TcpStream::connect(std::string_view address) {
  return ConnectFuture(SocketAddress::parse(address));
}

void TcpStream::close() noexcept {
  close_descriptor(std::exchange(m_fd, -1), std::exchange(m_source, nullptr));
  m_buffered.reset();
}

void TcpStream::consume_buffered(std::size_t n) noexcept {
  m_buffered->erase(0, n);
  if (m_buffered->empty()) m_buffered.reset();  // the invariant: null, or not empty
}

int TcpStream::checked_fd(const char* operation) const {
  if (m_fd < 0) {
    throw std::logic_error(std::string("weft: ") + operation + " on a closed TcpStream");
  }
  return m_fd;
}

detail::IoSource& TcpStream::source() {
  if (m_source == nullptr) m_source = new detail::IoSource(detail::current_reactor(), m_fd);
  return *m_source;
}

void TcpStream::shutdown_write() {
  if (::shutdown(checked_fd("shutdown_write"), SHUT_WR) != 0) {
    throw detail::errno_error(errno, "shutdown");
  }
}

void TcpStream::set_nodelay(bool enabled) {
  int value = enabled ? 1 : 0;
  if (::setsockopt(checked_fd("set_nodelay"), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) !=
      0) {
    throw detail::errno_error(errno, "setsockopt TCP_NODELAY");
  }
}

SocketAddress TcpStream::peer_addr() const {
  sockaddr_storage storage{};
  socklen_t size = sizeof storage;
  if (::getpeername(checked_fd("peer_addr"), reinterpret_cast<sockaddr*>(&storage), &size) != 0) {
    throw detail::errno_error(errno, "getpeername");
  }
  return SocketAddress::from_native(&storage, size);
}

SocketAddress TcpStream::local_addr() const {
  sockaddr_storage storage{};
  socklen_t size = sizeof storage;
  if (::getsockname(checked_fd("local_addr"), reinterpret_cast<sockaddr*>(&storage), &size) != 0) {
    throw detail::errno_error(errno, "getsockname");
  }
  return SocketAddress::from_native(&storage, size);
}

// --- connect --------------------------------------------------------------------------------

ConnectFuture::ConnectFuture(ConnectFuture&& other) noexcept
    : m_address(other.m_address),
      m_local(other.m_local),
      m_bind_local(other.m_bind_local),
      m_fd(std::exchange(other.m_fd, -1)),
      m_source(std::exchange(other.m_source, nullptr)),
      m_pending(std::move(other.m_pending)) {}

ConnectFuture::~ConnectFuture() {
  m_pending.reset();
  close_descriptor(m_fd, m_source);
}

Poll<TcpStream> ConnectFuture::poll(Context& cx) {
  m_pending.clear();
  const std::string what = "connect " + m_address.to_string();
  if (m_fd < 0) {
    const int family = m_address.is_ipv6() ? AF_INET6 : AF_INET;
    m_fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m_fd < 0) throw detail::errno_error(errno, what);
    if (m_bind_local) {
      // The kernel picks the port at bind time, from the whole ephemeral range, rather than
      // per destination at connect time; IP_BIND_ADDRESS_NO_PORT restores the latter.
      int one = 1;
      ::setsockopt(m_fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (::bind(m_fd, static_cast<const sockaddr*>(m_local.native()),
                 static_cast<socklen_t>(m_local.native_size())) != 0) {
        throw detail::errno_error(errno, what + " from " + m_local.to_string());
      }
    }
    int rc;
    do {
      rc = ::connect(m_fd, static_cast<const sockaddr*>(m_address.native()),
                     static_cast<socklen_t>(m_address.native_size()));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) throw detail::errno_error(errno, what);
    if (rc == 0) return TcpStream(std::exchange(m_fd, -1));
  } else {
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(m_fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    if (error != 0 && error != EINPROGRESS && error != EALREADY) {
      throw detail::errno_error(error, what);
    }
    if (error == 0) {
      // Writable with no error: connected, unless the wake-up was only a hint.
      sockaddr_storage peer{};
      socklen_t peer_size = sizeof peer;
      if (::getpeername(m_fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0) {
        TcpStream stream(std::exchange(m_fd, -1));
        // The registration moves with the descriptor, so no second one is ever made.
        stream.m_source = std::exchange(m_source, nullptr);
        return stream;
      }
      if (errno != ENOTCONN) throw detail::errno_error(errno, what);
    }
  }
  if (m_source == nullptr) m_source = new detail::IoSource(detail::current_reactor(), m_fd);
  m_pending.wait(*m_source, detail::IoSource::k_write, cx.waker());
  return pending;
}

// --- read -----------------------------------------------------------------------------------

Poll<std::size_t> ReadFuture::poll(Context& cx) {
  m_pending.clear();
  TcpStream& stream = *m_stream;
  const int fd = stream.checked_fd("read");
  if (!detail::coop_proceed(cx)) return pending;  // a socket that is always readable
  if (stream.m_buffered) {
    std::string& buffered = *stream.m_buffered;
    const std::size_t n = std::min(m_buffer.size(), buffered.size());
    std::memcpy(m_buffer.data(), buffered.data(), n);
    stream.consume_buffered(n);
    return n;
  }
  if (m_buffer.empty()) return std::size_t{0};
  if (std::exchange(m_start, ReadStart::now) == ReadStart::after_readiness) {
    m_pending.wait(stream.source(), detail::IoSource::k_read, cx.waker());
    return pending;
  }
  for (;;) {
    const ssize_t n = ::recv(fd, m_buffer.data(), m_buffer.size(), 0);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (!would_block(errno)) throw detail::errno_error(errno, "read");
    break;
  }
  m_pending.wait(stream.source(), detail::IoSource::k_read, cx.waker());
  return pending;
}

std::optional<ReadUntilResult> ReadUntilFuture::split(std::string_view bytes, std::size_t searched,
                                                      std::size_t& taken) const {
  const std::size_t window = std::min(bytes.size(), m_max);
  const std::size_t found = bytes.find(m_delimiter, searched);
  if (found != std::string_view::npos && found < window) {
    taken = found + 1;
    return ReadUntilResult{std::string(bytes.substr(0, taken)), ReadUntilEnd::delimiter};
  }
  if (bytes.size() >= m_max) {
    taken = m_max;
    return ReadUntilResult{std::string(bytes.substr(0, taken)), ReadUntilEnd::limit};
  }
  return std::nullopt;
}

Poll<ReadUntilResult> ReadUntilFuture::poll(Context& cx) {
  m_pending.clear();
  TcpStream& stream = *m_stream;
  const int fd = stream.checked_fd("read_until");
  if (!detail::coop_proceed(cx)) return pending;
  if (m_max == 0) return ReadUntilResult{std::string(), ReadUntilEnd::limit};  // full at once
  std::unique_ptr<std::string>& buffered = stream.m_buffered;
  // Kept bytes may hold the line, or part of it with the rest already in the socket: only a
  // read with nothing kept waits first.
  if (std::exchange(m_start, ReadStart::now) == ReadStart::after_readiness && !buffered) {
    m_pending.wait(stream.source(), detail::IoSource::k_read, cx.waker());
    return pending;
  }
  std::size_t searched = 0;  // bytes of *buffered already known to hold no delimiter
  std::size_t taken = 0;
  for (;;) {
    if (buffered) {
      if (auto line = split(*buffered, searched, taken)) {
        stream.consume_buffered(taken);
        return std::move(*line);
      }
      searched = buffered->size();
    }
    // Read into the stack and keep only what is left over: a connection that waits for its
    // line then holds no empty 4 KiB buffer (thousands of idle connections add up).
    char chunk[k_read_chunk];
    ssize_t n;
    do {
      n = ::recv(fd, chunk, sizeof chunk, 0);
    } while (n < 0 && errno == EINTR);
    const int error = errno;
    if (n > 0) {
      const std::string_view got(chunk, static_cast<std::size_t>(n));
      if (buffered) {
        buffered->append(got);
        continue;
      }
      // Nothing was buffered: a line that arrived whole is cut from the chunk, and only the
      // bytes after it (a pipelining peer's next line) are kept.
      std::optional<ReadUntilResult> line;
      try {
        line = split(got, 0, taken);
        if (line && taken < got.size()) {
          buffered = std::make_unique<std::string>(got.substr(taken));
        }
      } catch (...) {
        // Out of memory for the line or its leftovers: keep every byte this read took from
        // the socket for the next read_until, unless this allocation fails too.
        buffered = std::make_unique<std::string>(got);
        throw;
      }
      if (line) return std::move(*line);
      buffered = std::make_unique<std::string>(got);
      searched = got.size();
      continue;
    }
    if (n == 0) {
      ReadUntilResult rest{buffered ? std::move(*buffered) : std::string(), ReadUntilEnd::eof};
      buffered.reset();
      return rest;
    }
    if (!would_block(error)) throw detail::errno_error(error, "read");
    break;
  }
  m_pending.wait(stream.source(), detail::IoSource::k_read, cx.waker());
  return pending;
}

// --- write ----------------------------------------------------------------------------------

Poll<void> WriteAllFuture::poll(Context& cx) {
  m_pending.clear();
  TcpStream& stream = *m_stream;
  const int fd = stream.checked_fd("write_all");
  if (!detail::coop_proceed(cx)) return pending;  // a socket that is always writable
  // With a shutdown to follow, MSG_MORE keeps the last partial segment in the send queue
  // (full ones still go), and shutdown(2) sets FIN on that queued segment and sends it.
  const bool shutdown_after = m_then == Then::shutdown_write;
  const int flags = MSG_NOSIGNAL | (shutdown_after ? MSG_MORE : 0);
  while (!m_bytes.empty()) {
    const ssize_t n = ::send(fd, m_bytes.data(), m_bytes.size(), flags);
    if (n >= 0) {
      m_bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (!would_block(errno)) throw detail::errno_error(errno, "write");
    m_pending.wait(stream.source(), detail::IoSource::k_write, cx.waker());
    return pending;
  }
  if (shutdown_after) stream.shutdown_write();
  return ready();
}

}  // namespace weft
