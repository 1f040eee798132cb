// weft-load: simulated greeter clients, all of them weft tasks on one runtime.
//
// Each client connects, reads the prompt, optionally holds the connection (--hold), sends a
// name, reads the reply, checks it byte for byte, and closes: by default it waits for the
// server to close first (so that TIME_WAIT lands on the server's side, not on our ephemeral
// ports), or with --close-first client it closes at once. Then it starts over until the
// dialogs (-n) or the time (--duration) run out. Latency is measured from the connect
// to the reply, minus the hold. Exit status: 0 when every dialog succeeded, 1 when any
// failed (or the host name did not resolve), 2 for a usage error.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../common/fd_limit.hpp"
#include "../common/flags.hpp"
#include "../common/resolve.hpp"
#include "histogram.hpp"
#include "weft.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* k_usage = R"(Usage: weft-load [OPTIONS]

Simulates greeter clients (see weft-greeter) and reports dialogs per second, latency
percentiles and errors by kind.

Options:
  --host HOST               server address or host name (default 127.0.0.1)
  --port PORT               server port (default 6142)
  -c, --connections N       concurrent clients (default 100)
  -n, --dialogs N           total dialogs (default 10000), or:
  --duration DURATION       run for this long instead
  --hold DURATION           wait between the prompt and the name (default 0)
  --connect-timeout DURATION
                            for each connect (default 10s)
  --timeout DURATION        for each later step: the prompt, the reply, the server's
                            close (default 10s)
  --close-first WHO         who closes after the reply: server (the default: wait for
                            the server's close, which leaves TIME_WAIT on its side) or
                            client (close at once, for servers that wait for the client)
  --source-addresses N      spread clients over N source addresses, 127.0.0.1 to
                            127.0.0.N (loopback servers only; default 1). See docs/load.md
  --threads N               worker threads (default: one per core)
  --json                    print the result as one JSON object on stdout
  --help                    show this help

DURATION is a number with a unit: 250ms, 10s, 2m (a bare number means seconds).
)";

struct Options {
  std::string host = "127.0.0.1";
  unsigned port = 6142;
  std::size_t connections = 100;
  std::uint64_t dialogs = 10'000;
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds hold{0};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{10'000};
  bool client_closes_first = false;
  std::size_t threads = 0;
  unsigned source_addresses = 1;
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "weft-load: %s\nTry 'weft-load --help'.\n", message.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  bool dialogs_given = false;
  weft_apps::Flags flags("weft-load", argc, argv);
  while (flags.next()) {
    if (flags.is("--help") || flags.is("-h")) {
      std::fputs(k_usage, stdout);
      std::exit(0);
    } else if (flags.is("--host")) {
      options.host = std::string(flags.value());
    } else if (flags.is("--port")) {
      options.port = static_cast<unsigned>(flags.number(65535));
    } else if (flags.is("-c") || flags.is("--connections")) {
      options.connections = flags.number(1'000'000);
      if (options.connections == 0) flags.fail("--connections is at least 1");
    } else if (flags.is("-n") || flags.is("--dialogs")) {
      options.dialogs = flags.number(1'000'000'000'000ULL);
      if (options.dialogs == 0) flags.fail("--dialogs is at least 1");
      dialogs_given = true;
    } else if (flags.is("--duration")) {
      options.duration = flags.duration();
      if (options.duration.count() == 0) flags.fail("--duration needs a duration above zero");
    } else if (flags.is("--hold")) {
      options.hold = flags.duration();
    } else if (flags.is("--connect-timeout")) {
      options.connect_timeout = flags.duration();
      if (options.connect_timeout.count() == 0) {
        flags.fail("--connect-timeout needs a duration above zero");
      }
    } else if (flags.is("--timeout")) {
      options.timeout = flags.duration();
      if (options.timeout.count() == 0) flags.fail("--timeout needs a duration above zero");
    } else if (flags.is("--close-first")) {
      const std::string_view who = flags.value();
      if (who != "server" && who != "client") {
        flags.fail("--close-first is server or client, got '" + std::string(who) + "'");
      }
      options.client_closes_first = who == "client";
    } else if (flags.is("--source-addresses")) {
      options.source_addresses = static_cast<unsigned>(flags.number(254));
      if (options.source_addresses == 0) flags.fail("--source-addresses is at least 1");
    } else if (flags.is("--threads")) {
      options.threads = flags.number(1024);
      if (options.threads == 0) flags.fail("--threads is at least 1");
    } else if (flags.is("--json")) {
      options.json = true;
    } else {
      flags.fail("unknown option '" + std::string(flags.name()) + "'");
    }
  }
  if (dialogs_given && options.duration.count() > 0) {
    flags.fail("give --dialogs or --duration, not both");
  }
  if (options.duration.count() > 0) options.dialogs = ~std::uint64_t{0};
  return options;
}

enum class ErrorKind { refused, reset, timeout, wrong_reply, closed_early, no_ports, other, count };
constexpr const char* k_error_names[] = {"refused",      "reset",    "timeout", "wrong_reply",
                                         "closed_early", "no_ports", "other"};
static_assert(std::size(k_error_names) == static_cast<std::size_t>(ErrorKind::count));

/// State every client task shares. The counters are relaxed: each is a tally that publishes
/// nothing else, read for the progress line (an estimate) and after the runtime has joined
/// every client (exact).
struct Shared {
  weft::SocketAddress server;
  Options options;
  Clock::time_point deadline;
  std::atomic<std::uint64_t> claimed{0};
  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> errors[static_cast<int>(ErrorKind::count)]{};
  weft_load::Histogram latency_us;

  /// Takes the next dialog, or returns false when the run is over.
  bool claim() {
    if (options.duration.count() > 0) return Clock::now() < deadline;
    return claimed.fetch_add(1, std::memory_order_relaxed) < options.dialogs;
  }
  void fail(ErrorKind kind) {
    errors[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t failed() const {
    std::uint64_t total = 0;
    for (const auto& e : errors)
      total += e.load(std::memory_order_relaxed);
    return total;
  }
};

ErrorKind classify(const std::system_error& error) {
  switch (error.code().value()) {
    case ECONNREFUSED:
      return ErrorKind::refused;
    case ECONNRESET:
    case EPIPE:
      return ErrorKind::reset;
    case ETIMEDOUT:
      return ErrorKind::timeout;
    case EADDRNOTAVAIL:
      return ErrorKind::no_ports;
    default:
      return ErrorKind::other;
  }
}

/// One dialog; returns the error kind, or nothing on success.
weft::Task<std::optional<ErrorKind>> dialog(Shared& shared, const std::string& name,
                                            std::size_t client_id) {
  const auto timeout = shared.options.timeout;
  const auto started = Clock::now();
  auto connect =
      shared.options.source_addresses > 1
          ? weft::TcpStream::connect_from(
                shared.server,
                weft::SocketAddress::from_host_port(
                    "127.0.0." + std::to_string(1 + client_id % shared.options.source_addresses),
                    0))
          : weft::TcpStream::connect(shared.server);
  weft::TcpStream stream =
      co_await weft::timeout(shared.options.connect_timeout, std::move(connect));
  auto prompt = co_await weft::timeout(timeout, stream.read_until('\n', 64));
  // As for the reply below: nothing before the close is an early close; anything else that
  // is not the prompt (cut short, or 64 bytes without a newline) is a wrong one.
  if (prompt.end == weft::ReadUntilEnd::eof && prompt.bytes.empty()) {
    co_return ErrorKind::closed_early;
  }
  if (prompt.bytes != "Who are you?\n") co_return ErrorKind::wrong_reply;
  Clock::duration held{0};
  if (shared.options.hold.count() > 0) {
    const auto hold_start = Clock::now();
    co_await weft::sleep_for(shared.options.hold);
    held = Clock::now() - hold_start;
  }
  co_await weft::timeout(timeout, stream.write_all(name));
  auto reply = co_await weft::timeout(timeout, stream.read_until('\n', 2048));
  const auto latency = Clock::now() - started - held;
  if (reply.end == weft::ReadUntilEnd::eof && reply.bytes.empty()) {
    co_return ErrorKind::closed_early;
  }
  const std::string expected = "Thanks for dialing in, " + name.substr(0, name.size() - 1) + "!\n";
  if (reply.bytes != expected) co_return ErrorKind::wrong_reply;
  char extra[16];
  if (!shared.options.client_closes_first) {
    // Let the server close first, so that TIME_WAIT stays on its side.
    if (co_await weft::timeout(timeout, stream.read(extra)) != 0) {
      co_return ErrorKind::wrong_reply;
    }
  } else {
    // Closing first, the client does not wait for more; but bytes that came with the reply
    // (buffered by read_until) or before this poll are as wrong as bytes after it would be.
    auto more = co_await weft::select(stream.read(extra), weft::yield_now());
    if (more.index() == 0 && std::get<0>(more) != 0) co_return ErrorKind::wrong_reply;
  }
  shared.latency_us.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
  co_return std::nullopt;
}

weft::Task<void> client(Shared& shared, std::size_t id) {
  for (std::uint64_t sequence = 0; shared.claim(); ++sequence) {
    const std::string name = "client-" + std::to_string(id) + "-" + std::to_string(sequence) + "\n";
    std::optional<ErrorKind> error;
    try {
      error = co_await dialog(shared, name, id);
    } catch (const weft::TimedOut&) {
      error = ErrorKind::timeout;
    } catch (const std::system_error& e) {
      error = classify(e);
    } catch (const std::exception&) {
      error = ErrorKind::other;
    }
    if (error) {
      shared.fail(*error);
    } else {
      shared.succeeded.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

weft::Task<void> progress(Shared& shared, Clock::time_point start) {
  for (;;) {
    co_await weft::sleep_for(1s);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const auto done = shared.succeeded.load(std::memory_order_relaxed);
    std::fprintf(stderr, "\r%8.1fs  %12llu ok  %8llu failed  %10.0f dialogs/s", seconds,
                 static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(shared.failed()), done / seconds);
  }
}

weft::Task<void> run(Shared& shared) {
  const auto start = Clock::now();
  std::optional<weft::JoinHandle<void>> ticker;
  if (!shared.options.json && ::isatty(STDERR_FILENO))
    ticker = weft::spawn(progress(shared, start));
  std::vector<weft::JoinHandle<void>> clients;
  clients.reserve(shared.options.connections);
  for (std::size_t id = 0; id < shared.options.connections; ++id)
    clients.push_back(weft::spawn(client(shared, id)));
  for (auto& handle : clients)
    co_await handle;
  if (ticker) {
    ticker->abort();
    std::fputc('\n', stderr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // The report goes to stdout: a reader that has gone (`weft-load | head -c 10`) makes the
  // write fail instead of killing the run before its exit status says how the dialogs went.
  std::signal(SIGPIPE, SIG_IGN);
  const Options options = parse(argc, argv);
  const rlim_t descriptors = weft_apps::raise_open_file_limit();
  if (descriptors != 0 && descriptors < options.connections + 64) {
    std::fprintf(stderr,
                 "weft-load: %zu connections need more descriptors than the limit of %llu "
                 "(raise it with ulimit -n)\n",
                 options.connections, static_cast<unsigned long long>(descriptors));
    return 2;
  }
  auto shared = std::make_unique<Shared>();
  try {
    shared->server =
        weft_apps::resolve_host(options.host, static_cast<std::uint16_t>(options.port));
  } catch (const std::exception& error) {
    // Not a usage error: the lookup may fail for a while (EAI_AGAIN) and then work.
    std::fprintf(stderr, "weft-load: %s\n", error.what());
    return 1;
  }
  if (options.source_addresses > 1 && !shared->server.host().starts_with("127.")) {
    usage_error("--source-addresses needs a server on 127.0.0.0/8");
  }
  shared->options = options;
  const auto start = Clock::now();
  shared->deadline = start + options.duration;
  {
    weft::Runtime runtime(
        weft::RuntimeOptions{.workers = options.threads, .thread_name_prefix = "load"});
    runtime.block_on(run(*shared));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto ok = shared->succeeded.load(std::memory_order_relaxed);
  const auto failed = shared->failed();
  const auto& h = shared->latency_us;
  if (options.json) {
    std::printf(
        "{\"connections\":%zu,\"dialogs\":%llu,\"failed\":%llu,\"seconds\":%.3f,"
        "\"dialogs_per_second\":%.1f,\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
        "\"p99_9\":%llu,\"max\":%llu},\"errors\":{",
        options.connections, static_cast<unsigned long long>(ok),
        static_cast<unsigned long long>(failed), seconds, ok / seconds,
        static_cast<unsigned long long>(h.percentile(50)),
        static_cast<unsigned long long>(h.percentile(90)),
        static_cast<unsigned long long>(h.percentile(99)),
        static_cast<unsigned long long>(h.percentile(99.9)),
        static_cast<unsigned long long>(h.max()));
    for (int kind = 0; kind < static_cast<int>(ErrorKind::count); ++kind) {
      std::printf(
          "%s\"%s\":%llu", kind == 0 ? "" : ",", k_error_names[kind],
          static_cast<unsigned long long>(shared->errors[kind].load(std::memory_order_relaxed)));
    }
    std::printf("}}\n");
  } else {
    std::printf("%llu dialogs in %.2f s with %zu connections: %.0f dialogs/s\n",
                static_cast<unsigned long long>(ok), seconds, options.connections, ok / seconds);
    std::printf("latency (us): p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
                static_cast<unsigned long long>(h.percentile(50)),
                static_cast<unsigned long long>(h.percentile(90)),
                static_cast<unsigned long long>(h.percentile(99)),
                static_cast<unsigned long long>(h.percentile(99.9)),
                static_cast<unsigned long long>(h.max()));
    std::printf("failed: %llu", static_cast<unsigned long long>(failed));
    for (int kind = 0; kind < static_cast<int>(ErrorKind::count); ++kind) {
      if (const auto n = shared->errors[kind].load(std::memory_order_relaxed)) {
        std::printf("  %s %llu", k_error_names[kind], static_cast<unsigned long long>(n));
      }
    }
    std::printf("\n");
  }
  return failed == 0 ? 0 : 1;
}
