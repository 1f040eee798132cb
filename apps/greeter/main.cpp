// weft-greeter: the seed's greeter server on weft. See greeter.hpp for the dialog and its
// hardening, and `weft-greeter --help` for the flags.
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "../common/fd_limit.hpp"
#include "../common/flags.hpp"
#include "../common/resolve.hpp"
#include "greeter.hpp"
#include "log.hpp"
#include "stats_line.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* k_usage = R"(Usage: weft-greeter [OPTIONS]

The greeter from the Tokio tutorial, on weft: it asks "Who are you?", reads a name and
replies "Thanks for dialing in, NAME!".

Options:
  --host HOST              address or host name to listen on (default 127.0.0.1;
                           IPv6 as ::1)
  --port PORT              port to listen on, 0 for any free one (default 6142)
  --threads N              worker threads (default: one per core)
  --quiet                  do not log each connection
  --read-timeout DURATION  drop a client that sends no name in time (default 10s)
  --drain-timeout DURATION on SIGINT/SIGTERM, time for dialogs in flight (default 5s)
  --max-connections N      dialogs served at once; others wait (default 10000)
  --stats DURATION         print a line of runtime metrics this often (SIGUSR1 prints one
                           at any time, with or without this flag)
  --help                   show this help

DURATION is a number with a unit: 250ms, 10s, 2m (a bare number means seconds).
)";

struct Options {
  std::string host = "127.0.0.1";
  unsigned port = 6142;
  std::size_t threads = 0;
  std::chrono::milliseconds stats_every{0};
  greeter::Config config;
};

Options parse(int argc, char** argv) {
  Options options;
  weft_apps::Flags flags("weft-greeter", argc, argv);
  while (flags.next()) {
    if (flags.is("--help") || flags.is("-h")) {
      std::fputs(k_usage, stdout);
      std::exit(0);
    } else if (flags.is("--quiet")) {
      options.config.quiet = true;
    } else if (flags.is("--host")) {
      options.host = std::string(flags.value());
    } else if (flags.is("--port")) {
      options.port = static_cast<unsigned>(flags.number(65535));
    } else if (flags.is("--threads")) {
      options.threads = flags.number(1024);
      if (options.threads == 0) flags.fail("--threads is at least 1");
    } else if (flags.is("--read-timeout")) {
      options.config.read_timeout = flags.duration();
      if (options.config.read_timeout.count() == 0) {
        flags.fail("--read-timeout needs a duration above zero");
      }
    } else if (flags.is("--drain-timeout")) {
      options.config.drain_timeout = flags.duration();
    } else if (flags.is("--stats")) {
      options.stats_every = flags.duration();
      if (options.stats_every.count() == 0) flags.fail("--stats needs a duration above zero");
    } else if (flags.is("--max-connections")) {
      options.config.max_connections = flags.number(10'000'000);
      if (options.config.max_connections == 0) flags.fail("--max-connections is at least 1");
    } else {
      flags.fail("unknown option '" + std::string(flags.name()) + "'");
    }
  }
  return options;
}

/// Lends a future to a combinator that would otherwise take it (and destroy it when done).
template <class F>
class Borrowed {
 public:
  using Output = weft::FutureOutput<F>;
  explicit Borrowed(F& future) : m_future(&future) {}
  weft::Poll<Output> poll(weft::Context& cx) { return m_future->poll(cx); }

 private:
  F* m_future;
};

/// Completes at the first SIGINT or SIGTERM. It borrows the signal futures: their owner keeps
/// them, and with them the handlers, for what follows.
weft::Task<void> until_signalled(weft::SignalFuture& interrupt, weft::SignalFuture& terminate) {
  auto which = co_await weft::select(Borrowed(interrupt), Borrowed(terminate));
  greeter::log_out(which.index() == 0 ? "received SIGINT" : "received SIGTERM");
}

/// Prints a stats line every `every` (if non-zero) and at each SIGUSR1, until cancelled.
weft::Task<void> report_stats(const weft::Runtime& runtime, std::chrono::milliseconds every,
                              const greeter::Stats& stats, weft::SignalFuture& on_demand) {
  // relaxed: counters for a report; nothing is ordered by them.
  auto dialogs = [&stats] { return stats.finished.load(std::memory_order_relaxed); };
  weft::RuntimeMetrics before = runtime.metrics();
  std::uint64_t dialogs_before = dialogs();
  auto since = std::chrono::steady_clock::now();
  for (;;) {
    if (every.count() > 0) {
      (void)co_await weft::select(Borrowed(on_demand), weft::sleep_for(every));
    } else {
      co_await on_demand;
    }
    const weft::RuntimeMetrics now = runtime.metrics();
    const std::uint64_t dialogs_now = dialogs();
    const auto at = std::chrono::steady_clock::now();
    const std::uint64_t accepted = stats.accepted.load(std::memory_order_relaxed);
    greeter::log_out(greeter::stats_line(now, before, at - since, dialogs_now, dialogs_before,
                                         accepted > dialogs_now ? accepted - dialogs_now : 0));
    before = now;
    dialogs_before = dialogs_now;
    since = at;
  }
}

/// The signals the server handles. Owned by main(), outside the runtime, so that they stay
/// watched through the drain and the runtime's shutdown: a signal that arrives then (a
/// supervisor repeating itself, a late SIGUSR1) is counted, instead of taking its default
/// action and killing the server with a dialog in flight or with its exit status unwritten.
struct Signals {
  std::optional<weft::SignalFuture> interrupt;
  std::optional<weft::SignalFuture> terminate;
  std::optional<weft::SignalFuture> stats;
};

weft::Task<void> run(const Options& options, const weft::Runtime& runtime,
                     weft::TcpListener& listener, greeter::ConnectionSlots& slots,
                     greeter::Stats& stats, Signals& signals) {
  // Created on a runtime thread, so watched from here on: a signal that arrives once
  // "listening" is printed is never lost.
  weft::SignalFuture& interrupt = signals.interrupt.emplace(SIGINT);
  weft::SignalFuture& terminate = signals.terminate.emplace(SIGTERM);
  weft::SignalFuture& stats_now = signals.stats.emplace(SIGUSR1);
  // Dropped (aborted) when serve returns; the runtime's shutdown would cancel it anyway.
  struct AbortOnExit {
    weft::JoinHandle<void> handle;
    ~AbortOnExit() { handle.abort(); }
  } reporter{weft::spawn(report_stats(runtime, options.stats_every, stats, stats_now))};
  greeter::log_out("listening on port " + std::to_string(listener.local_addr().port()));
  co_await greeter::serve(listener, options.config, slots, stats,
                          until_signalled(interrupt, terminate));
}

}  // namespace

/// How long the exit waits for the log to be written (see log.hpp): a reader that has stopped
/// reading does not hold the exit any longer than this.
constexpr std::chrono::milliseconds k_final_flush{2'000};

int main(int argc, char** argv) {
  // A log reader that goes away (`weft-greeter | head`, a log shipper restarting) makes
  // writes to stdout fail with EPIPE, which the log then skips; without this its SIGPIPE
  // would kill the server. Sockets never raise it (they write with MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const Options options = parse(argc, argv);
  weft_apps::raise_open_file_limit();
  weft::TcpListener listener;
  try {
    // A deep backlog: thousands of clients may connect at once (the kernel caps it at
    // net.core.somaxconn, 4096 by default).
    listener = weft::TcpListener::bind(
        weft_apps::resolve_host(options.host, static_cast<std::uint16_t>(options.port)), 4096);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "weft-greeter: cannot listen on %s port %u: %s\n", options.host.c_str(),
                 options.port, error.what());
    return 1;
  }
  // Declared before the runtime: dialogs cancelled at its shutdown still give their slots back.
  greeter::ConnectionSlots slots(options.config.max_connections);
  greeter::Stats stats;
  Signals signals;  // before the runtime, so destroyed after it
  try {
    // A dialog's few polls are system calls of microseconds: timing one in 256 costs about
    // 1 ns of its 40 us of CPU (three 29 ns clock reads per sample), and gives the --stats
    // line's quantiles samples even at light load.
    weft::Runtime runtime(weft::RuntimeOptions{.workers = options.threads,
                                               .thread_name_prefix = "greeter",
                                               .metrics_sample_interval = 256});
    runtime.block_on(run(options, runtime, listener, slots, stats, signals));
  } catch (const std::exception& error) {
    greeter::log_err(std::string("weft-greeter: ") + error.what());
    greeter::flush_log(k_final_flush);
    return 1;
  }
  if (!options.config.quiet) {
    greeter::log_out(greeter::format(
        "served %llu dialog(s); bye",
        static_cast<unsigned long long>(stats.greeted.load(std::memory_order_relaxed))));
  }
  greeter::flush_log(k_final_flush);
  return 0;
}
