// The greeter: its name cleaning, the server in-process (one hardening behaviour per case),
// descriptor exhaustion in a child process, and the real weft-greeter binary end to end.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "greeter.hpp"
#include "greeter_client.hpp"
#include "log.hpp"
#include "stats_line.hpp"
#include "support.hpp"

using namespace weft;
using namespace std::chrono_literals;
using weft::test::Child;
using weft::test::Client;
using weft::test::eventually;
using weft::test::signals_are_deferred;

namespace {

/// Strict UTF-8 by decoding: a sequence is valid when its lead byte announces its length, its
/// continuation bytes are 10xxxxxx, and the code point it encodes needs that length, is not a
/// surrogate, and is at most U+10FFFF.
bool is_valid_utf8(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    const std::size_t length = lead < 0x80           ? 1
                               : (lead >> 5) == 0x6  ? 2
                               : (lead >> 4) == 0xE  ? 3
                               : (lead >> 3) == 0x1E ? 4
                                                     : 0;
    if (length == 0 || i + length > bytes.size()) return false;
    std::uint32_t code_point = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(bytes[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    constexpr std::uint32_t k_smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < k_smallest[length] || code_point > 0x10FFFF) return false;
    if (code_point >= 0xD800 && code_point <= 0xDFFF) return false;
    i += length;
  }
  return true;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    constexpr char k_digits[] = "0123456789abcdef";
    out += k_digits[static_cast<unsigned char>(c) >> 4];
    out += k_digits[static_cast<unsigned char>(c) & 0xF];
    out += ' ';
  }
  return out;
}

Task<void> until_received(OneshotReceiver<int> stop) {
  try {
    (void)co_await stop;
  } catch (const ChannelClosed&) {
    // A dropped sender stops the server too.
  }
}

/// A greeter served in-process on 127.0.0.1:0, stopped by stop() or at destruction.
class Server {
 public:
  explicit Server(greeter::Config config = quiet_config())
      : m_config(std::move(config)),
        m_slots(m_config.max_connections),
        m_listener(TcpListener::bind("127.0.0.1:0")),
        m_port(m_listener.local_addr().port()),
        m_runtime(RuntimeOptions{.workers = 2}) {
    auto [sender, receiver] = oneshot<int>();
    m_stop = std::make_unique<OneshotSender<int>>(std::move(sender));
    m_served = m_runtime.spawn(greeter::serve(m_listener, m_config, m_slots, m_stats,
                                              until_received(std::move(receiver))));
  }
  ~Server() { stop(); }

  static greeter::Config quiet_config() {
    greeter::Config config;
    config.quiet = true;
    return config;
  }

  [[nodiscard]] unsigned port() const { return m_port; }
  greeter::Stats& stats() { return m_stats; }
  greeter::ConnectionSlots& slots() { return m_slots; }
  /// Asks the server to shut down; returns once serve() has returned (drained).
  void stop() {
    if (m_stop) {
      (void)m_stop->send(1);
      m_stop.reset();
      m_served.join();
    }
  }

 private:
  greeter::Config m_config;
  greeter::ConnectionSlots m_slots;
  greeter::Stats m_stats;
  TcpListener m_listener;
  unsigned m_port;
  Runtime m_runtime;
  std::unique_ptr<OneshotSender<int>> m_stop;
  JoinHandle<void> m_served;
};

/// Runs the seed's dialog with `name_bytes` and returns everything the server sent after the
/// prompt, or "bad prompt".
std::string dialog(unsigned port, const std::string& name_bytes) {
  Client client(port);
  if (client.read_line() != "Who are you?\n") return "bad prompt";
  client.send(name_bytes);
  return client.read_all();
}

// Wire-level scenarios, run against the in-process server and against the binary alike.
namespace scenario {

void split_name(unsigned port) {
  Client client(port);
  REQUIRE(client.read_line() == "Who are you?\n");
  for (const char* part : {"Fe", "rr", "is", "\n"})
    REQUIRE(client.send(part));
  CHECK(client.read_all() == "Thanks for dialing in, Ferris!\n");
}

void invalid_utf8(unsigned port) {
  CHECK(dialog(port, "\xFF\xFEZo\xC3\n") ==
        "Thanks for dialing in, \xEF\xBF\xBD\xEF\xBF\xBDZo\xEF\xBF\xBD!\n");
  CHECK(dialog(port, "Ferris\n") == "Thanks for dialing in, Ferris!\n");
}

/// Names at and over the cap, ended by "\n" and "\r\n", and a flood without a newline.
void name_cap(unsigned port) {
  const std::string longest(1024, 'a');
  CHECK(dialog(port, longest + "\n") == "Thanks for dialing in, " + longest + "!\n");
  CHECK(dialog(port, std::string(1025, 'a') + "\n") ==
        "Your name is too long (at most 1024 bytes).\n");
  // The cap counts the name, not a telnet client's "\r\n" after it.
  CHECK(dialog(port, longest + "\r\n") == "Thanks for dialing in, " + longest + "!\n");
  CHECK(dialog(port, std::string(1025, 'a') + "\r\n") ==
        "Your name is too long (at most 1024 bytes).\n");
  // A flood without a newline is cut off at the cap too, never buffered without bound.
  Client flood(port);
  REQUIRE(flood.read_line() == "Who are you?\n");
  flood.send(std::string(64 * 1024, 'x'));
  CHECK(flood.read_line() == "Your name is too long (at most 1024 bytes).\n");
}

void half_close(unsigned port) {
  Client client(port);
  REQUIRE(client.read_line() == "Who are you?\n");
  client.send("Ferris");  // no newline: end of stream ends the name
  client.shutdown_write();
  CHECK(client.read_all() == "Thanks for dialing in, Ferris!\n");
}

/// A client that sends its name with the connection, before the prompt reaches it: the
/// server's wait for readiness before its read must still see the name already queued.
void name_before_prompt(unsigned port) {
  Client client(port);
  REQUIRE(client.send("Ferris\n"));
  CHECK(client.read_line() == "Who are you?\n");
  CHECK(client.read_all() == "Thanks for dialing in, Ferris!\n");
}

/// Three peers reset (before the prompt is read, after it, after the name), then a fourth
/// dialog must still succeed.
void resets(unsigned port) {
  {
    Client before_prompt(port);
    before_prompt.reset();
  }
  {
    Client after_prompt(port);
    REQUIRE(after_prompt.read_line() == "Who are you?\n");
    after_prompt.reset();
  }
  {
    Client after_name(port);
    REQUIRE(after_name.read_line() == "Who are you?\n");
    after_name.send("Ferris\n");
    after_name.reset();
  }
  CHECK(dialog(port, "Ferris\n") == "Thanks for dialing in, Ferris!\n");
}

/// With one slot: a second client waits, silent, until the first dialog ends.
void one_slot(unsigned port) {
  Client first(port);
  REQUIRE(first.read_line() == "Who are you?\n");
  Client second(port);  // queued in the kernel: the only slot is taken
  CHECK(second.silent_for(300ms));
  first.send("first\n");
  CHECK(first.read_all() == "Thanks for dialing in, first!\n");
  CHECK(second.read_line() == "Who are you?\n");
  second.send("second\n");
  CHECK(second.read_all() == "Thanks for dialing in, second!\n");
}

}  // namespace scenario

std::string greeter_binary() {
  const char* path = std::getenv("WEFT_GREETER");
  return path != nullptr ? path : "";
}

/// The weft-greeter binary on 127.0.0.1:0 with `flags`, under a descriptor limit (soft and
/// hard) if `fd_limit` is set, with --quiet unless `log` says otherwise; port() is 0 if it
/// did not start. Killed when destroyed.
enum class Log { quiet, each_connection };
class GreeterProcess {
 public:
  explicit GreeterProcess(std::vector<std::string> flags, int fd_limit = 0, Log log = Log::quiet)
      : m_child(command(std::move(flags), fd_limit, log)) {
    if (auto line = m_child.wait_for_line("listening on port ")) {
      m_port = static_cast<unsigned>(std::stoul(line->substr(18)));
    }
  }
  [[nodiscard]] unsigned port() const { return m_port; }
  Child& child() { return m_child; }

 private:
  static std::vector<std::string> command(std::vector<std::string> flags, int fd_limit, Log log) {
    std::vector<std::string> argv;
    if (fd_limit > 0) {
      // sh's ulimit sets both limits, so the greeter cannot raise its soft one past this.
      argv = {"/bin/sh", "-c", "ulimit -n " + std::to_string(fd_limit) + " && exec \"$0\" \"$@\""};
    }
    argv.push_back(greeter_binary());
    argv.insert(argv.end(), {"--port", "0"});
    if (log == Log::quiet) argv.push_back("--quiet");
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
  }

  Child m_child;
  unsigned m_port = 0;
};

}  // namespace

TEST_SUITE("greeter") {
  TEST_CASE("names are trimmed of surrounding whitespace") {
    CHECK(greeter::clean_name("  Ferris \r\n") == "Ferris");
    CHECK(greeter::clean_name("\t\n") == "");
    CHECK(greeter::clean_name("Mary Ann\n") == "Mary Ann");
  }

  TEST_CASE("invalid UTF-8 in a name becomes U+FFFD, valid UTF-8 is kept") {
    const std::string fffd = "\xEF\xBF\xBD";
    CHECK(greeter::clean_name("Zo\xC3\xAB") == "Zo\xC3\xAB");              // ë
    CHECK(greeter::clean_name("\xF0\x9F\xA6\x80") == "\xF0\x9F\xA6\x80");  // 🦀
    CHECK(greeter::clean_name("a\xFF"
                              "b") == "a" + fffd + "b");                          // never valid
    CHECK(greeter::clean_name("\xC0\xAF") == fffd + fffd);                        // overlong
    CHECK(greeter::clean_name("\xED\xA0\x80") == fffd + fffd + fffd);             // surrogate
    CHECK(greeter::clean_name("x\xE2\x82") == "x" + fffd);                        // truncated
    CHECK(greeter::clean_name("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);  // > U+10FFFF
  }

  TEST_CASE("any bytes at all clean to valid, trimmed UTF-8 that keeps every valid sequence") {
    // Random strings drawn mostly from the bytes that matter to a decoder (leads, continuation
    // bytes, bytes never valid, whitespace), checked against a decoder written differently:
    // from code points, where clean_name works from byte ranges.
    const std::string alphabet =
        "a \t\r\n\x80\x8F\x90\x9F\xA0\xBF\xC0\xC1\xC2\xDF\xE0\xE1\xED\xEE\xEF\xF0\xF1\xF4"
        "\xF5\xF8\xFF";
    std::uint64_t seed = 0x9E3779B97F4A7C15;
    const auto next = [&seed] {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      return seed;
    };
    constexpr std::string_view k_whitespace = " \t\r\n\v\f";  // clean_name's is_space
    for (int round = 0; round < 20'000; ++round) {
      std::string raw;
      const std::size_t length = next() % 13;
      for (std::size_t i = 0; i < length; ++i)
        raw.push_back(alphabet[next() % alphabet.size()]);
      const std::string clean = greeter::clean_name(raw);
      INFO("input bytes: " << hex(raw));
      REQUIRE(is_valid_utf8(clean));
      CHECK(clean.size() <= 3 * raw.size());
      if (!clean.empty()) {
        CHECK(k_whitespace.find(clean.front()) == std::string_view::npos);
        CHECK(k_whitespace.find(clean.back()) == std::string_view::npos);
      }
      const auto first = raw.find_first_not_of(k_whitespace);
      const std::string trimmed =
          first == std::string::npos
              ? std::string()
              : raw.substr(first, raw.find_last_not_of(k_whitespace) - first + 1);
      if (is_valid_utf8(trimmed)) {
        CHECK(clean == trimmed);
      } else {
        CHECK(clean.find("\xEF\xBF\xBD") != std::string::npos);
      }
    }
  }

  TEST_CASE("the seed's dialog: a prompt, a name, and thanks") {
    Server server;
    CHECK(dialog(server.port(), "Ferris\n") == "Thanks for dialing in, Ferris!\n");
    CHECK(dialog(server.port(), "  Ferris \r\n") == "Thanks for dialing in, Ferris!\n");
  }

  TEST_CASE("a name split across several segments is read whole") {
    Server server;
    scenario::split_name(server.port());
  }

  TEST_CASE("invalid UTF-8 from a client is replaced, and the server keeps serving") {
    Server server;
    scenario::invalid_utf8(server.port());
  }

  TEST_CASE("a name of 1,024 bytes is accepted and a longer one gets an error line") {
    Server server;
    scenario::name_cap(server.port());
    // relaxed: Stats are relaxed counters (greeter.hpp); each reply came after its count.
    CHECK(server.stats().too_long.load(std::memory_order_relaxed) == 3);
  }

  TEST_CASE("a silent client is dropped at the read timeout") {
    greeter::Config config = Server::quiet_config();
    config.read_timeout = 100ms;
    Server server(config);
    Client client(server.port());
    REQUIRE(client.read_line() == "Who are you?\n");
    CHECK(client.read_all().empty());  // the server closed without a reply
    // relaxed: Stats are relaxed counters; the server counted before it closed.
    CHECK(server.stats().timed_out.load(std::memory_order_relaxed) == 1);
  }

  TEST_CASE("a client that half-closes after its name still gets the reply") {
    Server server;
    scenario::half_close(server.port());
  }

  TEST_CASE("a client that sends its name before reading the prompt gets the reply") {
    Server server;
    scenario::name_before_prompt(server.port());
  }

  TEST_CASE("peers that reset at any moment end only their own dialog") {
    Server server;
    scenario::resets(server.port());
    // relaxed: Stats are relaxed counters (greeter.hpp): a stronger load orders nothing more.
    CHECK(eventually([&] { return server.stats().finished.load(std::memory_order_relaxed) == 4; }));
    // Waited for as well: the acceptor counts a connection after spawning its dialog, which
    // can finish first, on the other worker.
    CHECK(eventually([&] { return server.stats().accepted.load(std::memory_order_relaxed) == 4; }));
  }

  TEST_CASE("an exception inside one dialog ends that connection only") {
    greeter::Config config = Server::quiet_config();
    config.reply = [](std::string_view name) -> std::string {
      if (name == "boom") throw std::runtime_error("the reply hook failed");
      return greeter::thanks(name);
    };
    Server server(config);
    CHECK(dialog(server.port(), "boom\n").empty());
    // relaxed: Stats are relaxed counters; the server counted before it closed.
    CHECK(server.stats().failed.load(std::memory_order_relaxed) == 1);
    CHECK(dialog(server.port(), "Ferris\n") == "Thanks for dialing in, Ferris!\n");
  }

  TEST_CASE("at most max_connections dialogs run at once; the next waits its turn") {
    greeter::Config config = Server::quiet_config();
    config.max_connections = 1;
    Server server(config);
    scenario::one_slot(server.port());
  }

  TEST_CASE("shutdown stops accepting and lets a dialog in flight finish") {
    Server server;
    Client in_flight(server.port());
    REQUIRE(in_flight.read_line() == "Who are you?\n");
    std::thread stopper([&] { server.stop(); });
    // The listener closes first: new clients are refused.
    CHECK(eventually([&] { return Client(server.port()).fd() < 0; }));
    in_flight.send("Ferris\n");
    CHECK(in_flight.read_all() == "Thanks for dialing in, Ferris!\n");
    stopper.join();
    CHECK(server.slots().in_use() == 0);
  }

  TEST_CASE("a dialog still running at the drain deadline is cancelled") {
    greeter::Config config = Server::quiet_config();
    config.drain_timeout = 50ms;
    auto server = std::make_unique<Server>(config);
    Client silent(server->port());
    REQUIRE(silent.read_line() == "Who are you?\n");
    server->stop();  // returns after the drain deadline, with the dialog still waiting
    CHECK(server->slots().in_use() == 1);
    server.reset();  // the runtime's shutdown cancels the dialog, which closes its socket
    CHECK(silent.read_all().empty());
    CHECK(silent.ended_at_eof());
  }

  TEST_CASE("accept_emfile_recovers: out of descriptors, the server waits, then serves") {
    // In a child process, so the descriptor limit and the descriptors used up stay there.
    // The child runs a runtime, which wants a parent with no other thread at the fork (TSan
    // refuses threads after a multi-threaded one): earlier tests' log lines started the log's
    // writer thread, so end it first.
    greeter::flush_log(std::chrono::seconds(5));
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 0;
      {
        Server server;
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = static_cast<rlim_t>(weft::test::open_fd_count() + 16);
        ::setrlimit(RLIMIT_NOFILE, &limit);
        // Use up every descriptor, then free one for the client: its connection is queued
        // by the kernel, and the server's accept finds no descriptor left. (Filling after
        // the connect raced the acceptor, which could take the connection first.)
        std::vector<int> fillers;
        for (int fd = ::dup(0); fd >= 0; fd = ::dup(0))
          fillers.push_back(fd);
        ::close(fillers.back());
        fillers.pop_back();
        Client waiting(server.port());
        // relaxed, here and below: Stats are relaxed counters; only the count matters.
        const bool exhausted = eventually([&] {
          return server.stats().descriptor_exhaustion.load(std::memory_order_relaxed) >= 1;
        });
        // Backing off means waiting between attempts, not a spin on the ever-ready listener:
        // after any pause k (5 ms doubling), pauses k + 1 and k + 2 alone take 30 ms or more
        // before attempt k + 3. A spinning acceptor makes three attempts in microseconds.
        const auto counted_from = std::chrono::steady_clock::now();  // before the count
        const auto seen = server.stats().descriptor_exhaustion.load(std::memory_order_relaxed);
        const bool three_more = eventually([&] {
          return server.stats().descriptor_exhaustion.load(std::memory_order_relaxed) >= seen + 3;
        });
        const auto three_attempts_took = std::chrono::steady_clock::now() - counted_from;
        const auto exhaustion_episodes =
            server.stats().descriptor_exhaustion.load(std::memory_order_relaxed);
        for (int fd : fillers)
          ::close(fd);
        // The backed-off acceptor serves the queued client once descriptors are free.
        const bool served = waiting.read_line() == "Who are you?\n";
        waiting.send("Ferris\n");
        const bool replied = waiting.read_all() == "Thanks for dialing in, Ferris!\n";
        const bool no_spin = three_more && three_attempts_took >= 30ms;
        code = exhausted && served && replied && no_spin ? 0 : 1;
        if (code != 0) {
          std::fprintf(
              stderr, "exhausted=%d served=%d replied=%d no_spin=%d episodes=%llu took=%lldus\n",
              exhausted, served, replied, no_spin,
              static_cast<unsigned long long>(exhaustion_episodes),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(three_attempts_took)
                      .count()));
        }
      }
      std::_Exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  TEST_CASE("the weft-greeter binary serves the seed's dialog and exits 0 on SIGTERM") {
    if (signals_are_deferred()) {
      MESSAGE("skipped under TSan: it defers signal handlers (see signals_are_deferred)");
      return;
    }
    const std::string binary = greeter_binary();
    REQUIRE_MESSAGE(!binary.empty(), "set WEFT_GREETER (meson test does)");
    Child greeter({binary, "--port", "0", "--threads", "2"});
    REQUIRE(greeter.started());
    auto listening = greeter.wait_for_line("listening on port ");
    REQUIRE(listening);
    const unsigned port = static_cast<unsigned>(std::stoul(listening->substr(18)));
    Client client(port);
    CHECK(client.read_line() == "Who are you?\n");
    client.send("Ferris\n");
    CHECK(client.read_all() == "Thanks for dialing in, Ferris!\n");
    CHECK(greeter.wait_for_line("connection from 127.0.0.1:"));
    greeter.signal(SIGTERM);
    CHECK(greeter.wait_exit() == 0);
  }

  TEST_CASE("the binary keeps serving, and exits on SIGTERM, when nobody reads its log") {
    const std::string binary = greeter_binary();
    REQUIRE_MESSAGE(!binary.empty(), "set WEFT_GREETER (meson test does)");
    const char* load_binary = std::getenv("WEFT_LOAD");
    REQUIRE_MESSAGE(load_binary != nullptr, "set WEFT_LOAD (meson test does)");
    GreeterProcess process({"--threads", "2"}, 0, Log::each_connection);
    REQUIRE(process.port() != 0);
    Child& greeter = process.child();
    // From here on nobody reads the greeter's stdout. 4,000 "connection from" lines are about
    // 130 KiB, twice what the pipe holds: a worker that wrote them itself would block once
    // the pipe filled, and every dialog after that would time out.
    Child load({load_binary, "--port", std::to_string(process.port()), "-c", "20", "-n", "4000",
                "--threads", "1", "--timeout", "10s", "--json"});
    CHECK(load.wait_exit(std::chrono::seconds(90)) == 0);
    CHECK(load.out().find("\"dialogs\":4000,\"failed\":0") != std::string::npos);
    if (signals_are_deferred()) {
      MESSAGE("SIGTERM skipped under TSan: it defers signal handlers (see signals_are_deferred)");
      return;
    }
    greeter.signal(SIGTERM);
    // The exit waits at most 2 s for the unread log, then leaves it.
    CHECK(greeter.wait_exit(std::chrono::seconds(20), Child::Output::leave_unread) == 0);
  }

  TEST_CASE("the binary keeps serving when the reader of its log has gone") {
    const std::string binary = greeter_binary();
    REQUIRE_MESSAGE(!binary.empty(), "set WEFT_GREETER (meson test does)");
    GreeterProcess process({"--threads", "2"}, 0, Log::each_connection);
    const unsigned port = process.port();
    REQUIRE(port != 0);
    Child& greeter = process.child();
    greeter.close_out();  // each "connection from" line now fails with EPIPE, not SIGPIPE
    for (int i = 0; i < 3; ++i)
      CHECK(dialog(port, "Ferris\n") == "Thanks for dialing in, Ferris!\n");
    if (signals_are_deferred()) {
      MESSAGE("SIGTERM skipped under TSan: it defers signal handlers (see signals_are_deferred)");
      return;
    }
    greeter.signal(SIGTERM);
    CHECK(greeter.wait_exit() == 0);
  }

  TEST_CASE(
      "the binary drains a dialog in flight on SIGINT, through repeated signals, and --quiet logs "
      "no connections") {
    if (signals_are_deferred()) {
      MESSAGE("skipped under TSan: it defers signal handlers (see signals_are_deferred)");
      return;
    }
    const std::string binary = greeter_binary();
    REQUIRE(!binary.empty());
    Child greeter({binary, "--port=0", "--quiet", "--drain-timeout", "10s"});
    auto listening = greeter.wait_for_line("listening on port ");
    REQUIRE(listening);
    Client client(static_cast<unsigned>(std::stoul(listening->substr(18))));
    REQUIRE(client.read_line() == "Who are you?\n");
    greeter.signal(SIGINT);
    REQUIRE(greeter.wait_for_line("received SIGINT"));
    // Signals keep arriving during the drain (a supervisor repeating itself): they must not
    // take their default action and kill the server before the dialog is done.
    greeter.signal(SIGINT);
    greeter.signal(SIGTERM);
    client.send("Ferris\n");
    CHECK(client.read_all() == "Thanks for dialing in, Ferris!\n");
    const int code = greeter.wait_exit();
    CAPTURE(greeter.out());
    CAPTURE(greeter.err());
    CHECK(code == 0);
    CHECK(greeter.out().find("connection from") == std::string::npos);
  }

  TEST_CASE("a stats line shows the interval's rates and the interval's p99") {
    using namespace std::chrono_literals;
    weft::RuntimeMetrics before;
    before.workers.resize(2);
    before.poll_duration.counts[weft::DurationHistogram::bucket_of(100us)] = 1000;  // old
    weft::RuntimeMetrics now = before;
    now.workers[0].polls = 3000;
    now.workers[1].polls = 1000;
    now.workers[0].steals = 2;
    now.workers[0].steal_attempts = 9;
    now.workers[0].busy_time = 1s;
    now.workers[1].local_queue_depth = 4;
    now.tasks_alive = 12;
    now.poll_duration.counts[weft::DurationHistogram::bucket_of(3us)] += 500;  // this interval
    const std::string line = greeter::stats_line(now, before, 2s, 700, 100, 5);
    CHECK(line.starts_with("stats: 300 dialogs/s, 5 open | polls 2000/s, steals 2/9 tries"));
    CHECK(line.find("busy 25%") != std::string::npos);
    CHECK(line.find("local 0+4") != std::string::npos);
    CHECK(line.find("tasks 12") != std::string::npos);
    CHECK(line.find("poll p99 < 4096ns") != std::string::npos);  // not the old 100us polls
    CHECK(line.find("delay p99 -") != std::string::npos);
  }

  TEST_CASE("a stats line rounds its p99 bound up and is never cut short") {
    using namespace std::chrono_literals;
    weft::RuntimeMetrics before;
    before.workers.resize(300);  // the local queue depths alone need over 512 characters
    weft::RuntimeMetrics now = before;
    now.poll_duration.counts[weft::DurationHistogram::bucket_of(10us)] = 10;  // [8192, 16384)
    const std::string line = greeter::stats_line(now, before, 1s, 0, 0, 0);
    CHECK(line.find("poll p99 < 17us") != std::string::npos);  // 16,384 ns, not "< 16us"
    CHECK(line.size() > 600);
    CHECK(line.ends_with("delay p99 -"));
  }

  TEST_CASE("the binary prints a stats line every --stats interval and on SIGUSR1") {
    if (signals_are_deferred()) {
      MESSAGE("skipped under TSan: it defers signal handlers (see signals_are_deferred)");
      return;
    }
    const std::string binary = greeter_binary();
    REQUIRE(!binary.empty());
    {
      Child greeter({binary, "--port=0", "--quiet", "--stats", "100ms"});
      auto listening = greeter.wait_for_line("listening on port ");
      REQUIRE(listening);
      Client client(static_cast<unsigned>(std::stoul(listening->substr(18))));
      REQUIRE(client.read_line() == "Who are you?\n");
      client.send("Ferris\n");
      REQUIRE(client.read_all() == "Thanks for dialing in, Ferris!\n");
      auto line = greeter.wait_for_line("stats: ");
      REQUIRE(line);
      CHECK(line->find("dialogs/s") != std::string::npos);
      CHECK(line->find("polls ") != std::string::npos);
      CHECK(line->find("poll p99 ") != std::string::npos);
      CHECK(greeter.wait_for_line("stats: "));  // and again, on its own
      greeter.signal(SIGTERM);
      CHECK(greeter.wait_exit() == 0);
    }
    {
      Child greeter({binary, "--port=0", "--quiet"});  // no --stats: SIGUSR1 alone
      REQUIRE(greeter.wait_for_line("listening on port "));
      greeter.signal(SIGUSR1);
      CHECK(greeter.wait_for_line("stats: "));
      greeter.signal(SIGTERM);
      CHECK(greeter.wait_exit() == 0);  // SIGUSR1 did not take its default action
    }
  }

  TEST_CASE("the binary drops a silent client at --read-timeout") {
    if (signals_are_deferred()) {
      MESSAGE("skipped under TSan: it defers signal handlers (see signals_are_deferred)");
      return;
    }
    const std::string binary = greeter_binary();
    REQUIRE(!binary.empty());
    Child greeter({binary, "--port", "0", "--read-timeout", "150ms"});
    auto listening = greeter.wait_for_line("listening on port ");
    REQUIRE(listening);
    Client client(static_cast<unsigned>(std::stoul(listening->substr(18))));
    REQUIRE(client.read_line() == "Who are you?\n");
    CHECK(client.read_all().empty());
    CHECK(client.ended_at_eof());  // the server closed it, long before the client's 10 s
    greeter.signal(SIGTERM);
    CHECK(greeter.wait_exit() == 0);
  }

  TEST_CASE("the binary reads split names whole and replaces invalid UTF-8") {
    REQUIRE(!greeter_binary().empty());
    GreeterProcess greeter({});
    REQUIRE(greeter.port() != 0);
    scenario::split_name(greeter.port());
    scenario::invalid_utf8(greeter.port());
  }

  TEST_CASE("the binary caps names at 1,024 bytes and answers a half-closed client") {
    REQUIRE(!greeter_binary().empty());
    GreeterProcess greeter({});
    REQUIRE(greeter.port() != 0);
    scenario::name_cap(greeter.port());
    scenario::half_close(greeter.port());
  }

  TEST_CASE("the binary survives peers that reset at any moment") {
    REQUIRE(!greeter_binary().empty());
    GreeterProcess greeter({});
    REQUIRE(greeter.port() != 0);
    scenario::resets(greeter.port());
  }

  TEST_CASE("the binary listens on a host name's IPv4 address") {
    REQUIRE(!greeter_binary().empty());
    GreeterProcess greeter({"--host", "localhost"});
    REQUIRE(greeter.port() != 0);
    CHECK(dialog(greeter.port(), "Ferris\n") == "Thanks for dialing in, Ferris!\n");
  }

  TEST_CASE("the binary with --max-connections 1 serves one dialog at a time") {
    REQUIRE(!greeter_binary().empty());
    GreeterProcess greeter({"--max-connections", "1"});
    REQUIRE(greeter.port() != 0);
    scenario::one_slot(greeter.port());
  }

  TEST_CASE("the binary out of descriptors keeps the extra clients queued, then serves them") {
    REQUIRE(!greeter_binary().empty());
    // 64 descriptors in all: once its own (about a dozen) and the first clients' sockets use
    // them up, accept fails with EMFILE and the rest wait in the kernel's backlog.
    GreeterProcess greeter({}, 64);
    REQUIRE(greeter.port() != 0);
    constexpr int k_clients = 80;
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < k_clients; ++i)
      clients.push_back(std::make_unique<Client>(greeter.port()));
    // Served in order: the later ones only once the earlier dialogs have given their
    // descriptors back.
    int served = 0;
    for (int i = 0; i < k_clients; ++i) {
      Client& client = *clients[static_cast<std::size_t>(i)];
      if (client.read_line() != "Who are you?\n") continue;
      const std::string name = "client" + std::to_string(i);
      client.send(name + "\n");
      if (client.read_all() == "Thanks for dialing in, " + name + "!\n") ++served;
      clients[static_cast<std::size_t>(i)].reset();
    }
    CHECK(served == k_clients);
    CHECK(greeter.child().wait_for_err("pausing accept"));
    CHECK(greeter.child().wait_for_err("accepting again"));
  }

  TEST_CASE("the binary explains --help, bad flags and a port it cannot bind") {
    const std::string binary = greeter_binary();
    REQUIRE(!binary.empty());
    {
      Child help({binary, "--help"});
      CHECK(help.wait_exit() == 0);
      CHECK(help.out().find("--read-timeout") != std::string::npos);
      CHECK(help.out().find("--max-connections") != std::string::npos);
    }
    {
      Child bad({binary, "--port", "seventy"});
      CHECK(bad.wait_exit() == 2);
      CHECK(bad.err().find("--port wants a number") != std::string::npos);
    }
    {
      Child unknown({binary, "--frobnicate"});
      CHECK(unknown.wait_exit() == 2);
      CHECK(unknown.err().find("unknown option '--frobnicate'") != std::string::npos);
    }
    {
      auto taken = TcpListener::bind("127.0.0.1:0");
      Child busy({binary, "--port", std::to_string(taken.local_addr().port())});
      CHECK(busy.wait_exit() == 1);
      CHECK(busy.err().find("Address already in use") != std::string::npos);
    }
  }
}
