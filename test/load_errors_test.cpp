// weft-load against servers that get the dialog wrong: each kind of failure is counted under
// its own name, and any failure makes the exit status 1. The servers are plain blocking
// sockets on 127.0.0.1:0, one connection at a time, so the counts are exact.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "greeter_client.hpp"

using weft::test::Child;
using weft::test::read_line_from;

namespace {

/// A socket on 127.0.0.1 with a kernel-chosen port; listening (with room for `backlog`
/// connections nobody accepted yet) unless told otherwise.
int bound_socket(bool listening, unsigned& port, int backlog = 16) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      (listening && ::listen(fd, backlog) != 0) ||
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
  std::string err;
};

/// weft-load against `port` with `extra` flags; unless they say otherwise, one client (one
/// worker) and three dialogs.
LoadResult run_load(unsigned port, std::vector<std::string> extra) {
  const char* path = std::getenv("WEFT_LOAD");
  REQUIRE(path != nullptr);
  const auto given = [&](const char* flag) {
    return std::find(extra.begin(), extra.end(), flag) != extra.end();
  };
  std::vector<std::string> argv = {path,        "--port", std::to_string(port),
                                   "--threads", "1",      "--json"};
  if (!given("-c")) argv.insert(argv.end(), {"-c", "1"});
  if (!given("-n") && !given("--duration")) argv.insert(argv.end(), {"-n", "3"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  Child load(argv);
  const int code = load.wait_exit(std::chrono::seconds(60));
  CAPTURE(load.err());
  return {code, load.out(), load.err()};
}

/// The number after `"key":` in weft-load's JSON, or -1.
double json_number(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
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
    // An empty label: glibc refuses the name without asking a DNS server, so the test sends
    // nothing off this machine.
    const LoadResult result = run_load(1, {"--host", "empty..label"});
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("cannot resolve host 'empty..label'") != std::string::npos);
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

  TEST_CASE("a prompt that runs on without a newline counts as wrong_reply, not closed_early") {
    MockServer server([](int fd) {
      send_text(fd, std::string(100, 'x'));
      (void)read_line_from(fd);  // until the client gives up and closes
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const LoadResult result = run_load(server.port(), {});
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"wrong_reply\":3") != std::string::npos);
    CHECK(result.json.find("\"closed_early\":0") != std::string::npos);
  }

  TEST_CASE("a server that closes before its prompt counts as closed_early") {
    MockServer server([](int fd) { ::close(fd); });
    REQUIRE(server.port() != 0);
    const LoadResult result = run_load(server.port(), {});
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"closed_early\":3") != std::string::npos);
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
    // Bytes after the reply are wrong even when the client does not wait for the close.
    MockServer chatty([](int fd) {
      answer(fd, [](const std::string& name) { return thanks(name) + "and more\n"; });
      (void)read_line_from(fd);
      ::close(fd);
    });
    REQUIRE(chatty.port() != 0);
    const LoadResult extra = run_load(chatty.port(), {"--close-first", "client"});
    CHECK(extra.exit_code == 1);
    CHECK(extra.json.find("\"wrong_reply\":3") != std::string::npos);
    // By default the client waits for the server to close first, which this one never does.
    const LoadResult waiting = run_load(server.port(), {"--timeout", "200ms"});
    CHECK(waiting.exit_code == 1);
    CHECK(waiting.json.find("\"timeout\":3") != std::string::npos);
  }

  TEST_CASE("--duration runs dialogs for that long, then stops and succeeds") {
    MockServer server([](int fd) {
      answer(fd, thanks);
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const LoadResult result = run_load(server.port(), {"--duration", "300ms"});
    CHECK(result.exit_code == 0);
    CHECK(json_number(result.json, "dialogs") >= 1);
    CHECK(json_number(result.json, "failed") == 0);
    CHECK(json_number(result.json, "seconds") >= 0.3);
  }

  TEST_CASE("--connect-timeout ends a connect the server's full backlog leaves hanging") {
    unsigned port = 0;
    // A backlog of 0 queues one connection; while it waits unaccepted, the kernel drops
    // every further SYN, so a connect neither succeeds nor fails until the client gives up
    // (after about two minutes of SYN retries, without the flag).
    const int listener = bound_socket(true, port, 0);
    REQUIRE(listener >= 0);
    const int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE(::connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    const LoadResult result =
        run_load(port, {"-n", "1", "--connect-timeout", "300ms", "--timeout", "120s"});
    ::close(filler);
    ::close(listener);
    CHECK(result.exit_code == 1);
    CHECK(result.json.find("\"timeout\":1") != std::string::npos);
  }

  TEST_CASE("--source-addresses spreads the clients over that many 127.0.0.x addresses") {
    // Four connections are accepted before any gets its prompt, so no client can finish a
    // dialog and claim a second one: the four dialogs belong to four distinct clients.
    unsigned port = 0;
    const int listener = bound_socket(true, port);
    REQUIRE(listener >= 0);
    std::vector<std::string> peers;
    std::thread server([&] {
      timeval limit{10, 0};  // accept() gives up if weft-load never makes all four
      ::setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      std::vector<int> connections;
      for (int i = 0; i < 4; ++i) {
        sockaddr_in peer{};
        socklen_t size = sizeof peer;
        const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &size, SOCK_CLOEXEC);
        if (fd < 0) break;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
        peers.emplace_back(text);
        connections.push_back(fd);
      }
      for (const int fd : connections) {
        answer(fd, thanks);
        ::close(fd);
      }
    });
    const LoadResult result = run_load(port, {"-c", "4", "-n", "4", "--source-addresses", "4"});
    server.join();
    ::close(listener);
    CHECK(result.exit_code == 0);
    std::sort(peers.begin(), peers.end());
    CHECK(peers == std::vector<std::string>{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"});
  }

  TEST_CASE("a report nobody reads does not change the exit status") {
    MockServer server([](int fd) {
      answer(fd, thanks);
      ::close(fd);
    });
    REQUIRE(server.port() != 0);
    const char* path = std::getenv("WEFT_LOAD");
    REQUIRE(path != nullptr);
    Child load(
        {path, "--port", std::to_string(server.port()), "-c", "1", "-n", "3", "--threads", "1"});
    load.close_out();  // gone before the dialogs end: the report's write fails with EPIPE
    CHECK(load.wait_exit(std::chrono::seconds(60)) == 0);
  }
}
