// weft::TcpListener: a listening TCP socket whose accept() is a future.
//
// Accepted streams are non-blocking and close-on-exec. When the process is out of
// descriptors (EMFILE, ENFILE) accept() throws std::system_error with that code and the
// pending connection stays queued in the kernel: the caller decides whether to back off or to
// shed it (see apps/greeter). The listener closes on destruction.
#pragma once

#include <string_view>
#include <utility>

#include "weft/socket_address.hpp"
#include "weft/tcp_stream.hpp"

namespace weft {

struct Accepted {
  TcpStream stream;
  SocketAddress peer;
};

class TcpListener;

class [[nodiscard]] AcceptFuture {
 public:
  using Output = Accepted;
  explicit AcceptFuture(TcpListener& listener) noexcept : m_listener(&listener) {}
  Poll<Accepted> poll(Context& cx);

 private:
  TcpListener* m_listener;
  detail::PendingIo m_pending;
};

class TcpListener {
 public:
  TcpListener() noexcept = default;
  TcpListener(TcpListener&& other) noexcept
      : m_fd(std::exchange(other.m_fd, -1)), m_source(std::exchange(other.m_source, nullptr)) {}
  TcpListener& operator=(TcpListener&& other) noexcept;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  ~TcpListener() { close(); }

  /// Binds and listens on "HOST:PORT" ("127.0.0.1:6142", "[::1]:0"; port 0 picks a free
  /// one). Synchronous; works on any thread. Throws std::invalid_argument for a malformed
  /// address and std::system_error when the socket cannot be bound.
  [[nodiscard]] static TcpListener bind(std::string_view address, int backlog = 1024);
  [[nodiscard]] static TcpListener bind(const SocketAddress& address, int backlog = 1024);

  /// The next connection and its peer's address. Only one accept may be pending at a time,
  /// and the listener must outlive it (close or destroy it only once no accept is pending).
  AcceptFuture accept() noexcept { return AcceptFuture(*this); }

  [[nodiscard]] SocketAddress local_addr() const;
  [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
  [[nodiscard]] int native_handle() const noexcept { return m_fd; }
  void close() noexcept;

 private:
  friend class AcceptFuture;
  detail::IoSource& source();

  int m_fd = -1;
  detail::IoSource* m_source = nullptr;
};

}  // namespace weft
