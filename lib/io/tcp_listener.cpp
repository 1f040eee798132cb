#include "weft/tcp_listener.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "io/io_source.hpp"
#include "io/uv_error.hpp"
#include "weft/detail/coop.hpp"

namespace weft {

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
  if (this != &other) {
    close();
    m_fd = std::exchange(other.m_fd, -1);
    m_source = std::exchange(other.m_source, nullptr);
  }
  return *this;
}

TcpListener TcpListener::bind(std::string_view address, int backlog) {
  return bind(SocketAddress::parse(address), backlog);
}

TcpListener TcpListener::bind(const SocketAddress& address, int backlog) {
  const std::string what = "bind " + address.to_string();
  const int family = address.is_ipv6() ? AF_INET6 : AF_INET;
  TcpListener listener;
  listener.m_fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener.m_fd < 0) throw detail::errno_error(errno, what);
  int one = 1;
  // Restarting the server must not wait for the old connections' TIME_WAIT to end.
  if (::setsockopt(listener.m_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    throw detail::errno_error(errno, what);
  }
  if (::bind(listener.m_fd, static_cast<const sockaddr*>(address.native()),
             static_cast<socklen_t>(address.native_size())) != 0) {
    throw detail::errno_error(errno, what);
  }
  if (::listen(listener.m_fd, backlog) != 0) throw detail::errno_error(errno, "listen");
  return listener;
}

SocketAddress TcpListener::local_addr() const {
  if (m_fd < 0) throw std::logic_error("weft: local_addr on a closed TcpListener");
  sockaddr_storage storage{};
  socklen_t size = sizeof storage;
  if (::getsockname(m_fd, reinterpret_cast<sockaddr*>(&storage), &size) != 0) {
    throw detail::errno_error(errno, "getsockname");
  }
  return SocketAddress::from_native(&storage, size);
}

void TcpListener::close() noexcept {
  if (m_source != nullptr) {
    std::exchange(m_source, nullptr)->close();
    m_fd = -1;
  } else if (m_fd >= 0) {
    ::close(std::exchange(m_fd, -1));
  }
}

detail::IoSource& TcpListener::source() {
  if (m_source == nullptr) m_source = new detail::IoSource(detail::current_reactor(), m_fd);
  return *m_source;
}

Poll<Accepted> AcceptFuture::poll(Context& cx) {
  m_pending.clear();
  TcpListener& listener = *m_listener;
  if (listener.m_fd < 0) throw std::logic_error("weft: accept on a closed TcpListener");
  if (!detail::coop_proceed(cx)) return pending;  // a backlog that is never empty
  for (;;) {
    sockaddr_storage peer{};
    socklen_t size = sizeof peer;
    const int fd = ::accept4(listener.m_fd, reinterpret_cast<sockaddr*>(&peer), &size,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      TcpStream stream(fd);  // owns the descriptor from here, whatever happens next
      return Accepted{std::move(stream), SocketAddress::from_native(&peer, size)};
    }
    // A connection that was reset while queued is the peer's problem, not the listener's.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw detail::errno_error(errno, "accept");
    break;
  }
  m_pending.wait(listener.source(), detail::IoSource::k_read, cx.waker());
  return pending;
}

}  // namespace weft
