// A blocking test client for the greeter, and a runner for the real weft-greeter binary.
// Every wait is bounded: sockets time out after 10 s, and child output is read with a limit.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace weft::test {

/// Reads one line including '\n' from a blocking socket, or what arrives before end of
/// stream, an error or the socket's receive timeout.
inline std::string read_line_from(int fd) {
  std::string line;
  char c;
  while (::recv(fd, &c, 1, 0) == 1) {
    line.push_back(c);
    if (c == '\n') break;
  }
  return line;
}

class Client {
 public:
  /// Connects to 127.0.0.1:port; fd() is -1 when the connection was refused.
  explicit Client(unsigned port) {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval limit{10, 0};
    ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(m_fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    int one = 1;
    ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(m_fd);
      m_fd = -1;
    }
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() {
    if (m_fd >= 0) ::close(m_fd);
  }

  [[nodiscard]] int fd() const { return m_fd; }

  bool send(const std::string& bytes) {
    return ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  void shutdown_write() { ::shutdown(m_fd, SHUT_WR); }
  /// Closes with RST instead of FIN.
  void reset() {
    linger abort_on_close{1, 0};
    ::setsockopt(m_fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    ::close(m_fd);
    m_fd = -1;
  }

  /// One line including '\n', or what arrived before end of stream or the 10 s limit.
  std::string read_line() { return read_line_from(m_fd); }
  /// Everything until end of stream (or the 10 s limit, or an error; see ended_at_eof).
  std::string read_all() {
    std::string all;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
      m_ended_at_eof = n == 0;
      if (n <= 0) return all;
      all.append(buffer, static_cast<std::size_t>(n));
    }
  }
  /// Whether the last read_all() ended because the peer closed (not at the time limit).
  [[nodiscard]] bool ended_at_eof() const { return m_ended_at_eof; }
  /// True when nothing at all has arrived during `window` (and the peer has not closed).
  bool silent_for(std::chrono::milliseconds window) {
    pollfd entry{m_fd, POLLIN, 0};
    return ::poll(&entry, 1, static_cast<int>(window.count())) == 0;
  }

 private:
  int m_fd = -1;
  bool m_ended_at_eof = false;
};

/// TSan defers a signal handler until the receiving thread enters a call it intercepts, and
/// weft's threads sleep in raw futex system calls, so under TSan a SIGTERM sent to the
/// process may wait until some thread wakes for another reason. The signal path is covered by
/// the other builds and by the in-process signal suite (raise() runs on an intercepted path).
inline bool signals_are_deferred() {
#if defined(__SANITIZE_THREAD__)
  return true;
#else
  return false;
#endif
}

/// Runs a program with its stdout and stderr captured.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    ::posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<char*> args;
    for (const auto& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    if (::posix_spawn(&m_pid, args[0], &actions, nullptr, args.data(), environ) != 0) m_pid = -1;
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    m_out = out[0];
    m_err = err[0];
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (m_pid > 0 && !m_exited) {
      ::kill(m_pid, SIGKILL);
      int status;
      ::waitpid(m_pid, &status, 0);
    }
    if (m_out >= 0) ::close(m_out);
    if (m_err >= 0) ::close(m_err);
  }

  [[nodiscard]] bool started() const { return m_pid > 0; }
  [[nodiscard]] pid_t pid() const { return m_pid; }
  void signal(int signum) { ::kill(m_pid, signum); }

  /// Reads stdout until a line starting with `prefix` arrives (within 20 s); returns it.
  std::optional<std::string> wait_for_line(const std::string& prefix) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      for (auto newline = m_out_text.find('\n', m_scanned); newline != std::string::npos;
           newline = m_out_text.find('\n', m_scanned)) {
        std::string line = m_out_text.substr(m_scanned, newline - m_scanned);
        m_scanned = newline + 1;
        if (line.starts_with(prefix)) return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(m_out, m_out_text, left)) return std::nullopt;
    }
  }

  /// Reads stderr until `text` appears in it (within 20 s); false if it never does.
  bool wait_for_err(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (m_err_text.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(m_err, m_err_text, left)) return false;
    }
    return true;
  }

  /// Closes our end of the child's stdout: its writes there fail with EPIPE from now on.
  void close_out() {
    if (m_out >= 0) ::close(m_out);
    m_out = -1;
  }

  /// Waits (at most `limit`) for the exit; returns the exit code, or -1 (killed, timed out).
  /// Unless told not to, it reads the child's output meanwhile, so that a chatty child never
  /// blocks on a full pipe.
  enum class Output { drain, leave_unread };
  int wait_exit(std::chrono::seconds limit = std::chrono::seconds(20),
                Output output = Output::drain) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(m_pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      if (output == Output::drain) {
        read_some(m_out, m_out_text, std::chrono::milliseconds(10));
        read_some(m_err, m_err_text, std::chrono::milliseconds(0));
      } else {
        ::poll(nullptr, 0, 10);  // a 10 ms pause between looks at the child, as above
      }
    }
    m_exited = true;
    while (read_some(m_out, m_out_text, std::chrono::milliseconds(0))) {
    }
    while (read_some(m_err, m_err_text, std::chrono::milliseconds(0))) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  [[nodiscard]] const std::string& out() const { return m_out_text; }
  [[nodiscard]] const std::string& err() const { return m_err_text; }

 private:
  static bool read_some(int fd, std::string& into, std::chrono::milliseconds wait) {
    if (fd < 0) return false;
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(wait.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return false;
    into.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  pid_t m_pid = -1;
  bool m_exited = false;
  int m_out = -1;
  int m_err = -1;
  std::string m_out_text;
  std::string m_err_text;
  std::size_t m_scanned = 0;
};

}  // namespace weft::test
