// weft-load against servers that get the dialog wrong: each kind of failure is counted under
// its own name, and any failure makes the exit status 1. The servers are plain blocking
// sockets on 127.0.0.1:0, one connection at a time, so the counts are exact.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "greeter_client.hpp"

using weft::test::Child;
using weft::test::read_line_from;

namespace {

/// A socket on 127.0.0.1 with a kernel-chosen port; listening unless told otherwise.
int bound_socket(bool listening, unsigned& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      (listening && ::listen(fd, 16) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  port = ntohs(address.sin_port);
  return fd;
}

/// Serves each accepted connection with `behaviour`, one at a time, until destroyed.
class MockServer {
 public:
  explicit MockServer(std::function<void(int)> behaviour)
      : m_listener(bound_socket(true, m_port)), m_behaviour(std::move(behaviour)) {
    if (m_listener >= 0) m_thread = std::thread([this] { serve(); });
  }
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;
  ~MockServer() {
    if (m_listener < 0) return;
    ::shutdown(m_listener, SHUT_RDWR);  // accept() returns at once with an error
    m_thread.join();
    ::close(m_listener);
  }
  [[nodiscard]] unsigned port() const { return m_listener >= 0 ? m_port : 0; }

 private:
  void serve() {
    for (;;) {
      const int connection = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) return;
      timeval limit{10, 0};  // a client that stalls cannot hold the server for longer
      ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      m_behaviour(connection);
    }
  }

  unsigned m_port = 0;
  int m_listener;
  std::function<void(int)> m_behaviour;
  std::thread m_thread;
};

void send_text(int fd, const std::string& text) {
  (void)::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
}

/// The greeter's dialog up to its reply, with `reply` made from the name.
void answer(int fd, const std::function<std::string(const std::string&)>& reply) {
  send_text(fd, "Who are you?\n");
  const std::string name = read_line_from(fd);
  send_text(fd, reply(name.substr(0, name.size() - 1)));
}

std::string thanks(const std::string& name) {
  return "Thanks for dialing in, " + name + "!\n";
}

struct LoadResult {
  int exit_code;
  std::string json;
};

/// weft-load with one client and three dialogs against `port`, plus `extra` flags.
LoadResult run_load(unsigned port, std::vector<std::string> extra) {
  const char* path = std::getenv("WEFT_LOAD");
  REQUIRE(path != nullptr);
  std::vector<std::string> argv = {path, "--port", std::to_string(port), "-c", "1",
                                   "-n", "3",      "--threads",          "1",  "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Child load(argv);
  const int code = load.wait_exit(std::chrono::seconds(60));
  CAPTURE(load.err());
  return {code, load.out()};
}

}  // namespace

TEST_SUITE("load_errors") {
  TEST_CASE("a server named by host name is found, and a correct dialog counts as success") {
    MockServer server([](int fd) {
      answer(fd, thanks);
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    // localhost may name ::1 first; weft-load takes its IPv4 address, where the server is.
    const LoadResult result = run_load(server.port(), {"--host", "localhost"});
    CHECK(result.exit_code == 0);
    CHECK(result.json.find("\"dialogs\":3,\"failed\":0") != std::string::npos);
  }

  TEST_CASE("a host name that does not resolve is a failure, not a usage error") {
    const LoadResult result = run_load(1, {"--host", "no-such-host.invalid"});
    CHECK(result.exit_code == 1);
  }

  TEST_CASE("a reply that is not the expected one counts as wrong_reply and fails the run") {
    MockServer server([](int fd) {
      answer(fd, [](const std::string&) { return thanks("somebody else"); });
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const LoadResult result = run_load(server.port(), {});
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"dialogs\":0,\"failed\":3") != std::string::npos);
    CHECK(result.json.find("\"wrong_reply\":3") != std::string::npos);
  }

  TEST_CASE("a server that resets the connection counts as reset") {
    MockServer server([](int fd) {
      linger abort_on_close{1, 0};  // close() sends RST instead of FIN
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const LoadResult result = run_load(server.port(), {});
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"reset\":3") != std::string::npos);
  }

  TEST_CASE("a port nobody listens on counts as refused") {
    unsigned port = 0;
    const int reserved = bound_socket(false, port);  // bound, so no one else takes the port
    REQUIRE(reserved >= 0);
    const LoadResult result = run_load(port, {});
    ::close(reserved);
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"refused\":3") != std::string::npos);
  }

  TEST_CASE("a server that closes before replying counts as closed_early") {
    MockServer server([](int fd) {
      send_text(fd, "Who are you?\n");
      (void)read_line_from(fd);
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const LoadResult result = run_load(server.port(), {});
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"closed_early\":3") != std::string::npos);
  }

  TEST_CASE("a server that waits for the client to close is served with --close-first client") {
    MockServer server([](int fd) {
      answer(fd, thanks);
      // Returns at the client's FIN (or after the receive timeout).
      (void)read_line_from(fd);
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const LoadResult closing = run_load(server.port(), {"--close-first", "client"});
    CHECK(closing.exit_code == 0);
    CHECK(closing.json.find("\"dialogs\":3,\"failed\":0") != std::string::npos);
    // By default the client waits for the server to close first, which this one never does.
    const LoadResult waiting = run_load(server.port(), {"--timeout", "200ms"});
    CHECK(waiting.exit_code == 1);
    CHECK(waiting.json.find("\"timeout\":3") != std::string::npos);
  }
}
