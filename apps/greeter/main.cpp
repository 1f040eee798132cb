// weft-greeter: the seed's greeter server on weft. See greeter.hpp for the dialog and its
// hardening, and `weft-greeter --help` for the flags.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "../common/fd_limit.hpp"
#include "greeter.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* k_usage = R"(Usage: weft-greeter [OPTIONS]

The greeter from the Tokio tutorial, on weft: it asks "Who are you?", reads a name and
replies "Thanks for dialing in, NAME!".

Options:
  --host HOST              address to listen on (default 127.0.0.1; IPv6 as ::1)
  --port PORT              port to listen on, 0 for any free one (default 6142)
  --threads N              worker threads (default: one per core)
  --quiet                  do not log each connection
  --read-timeout DURATION  drop a client that sends no name in time (default 10s)
  --drain-timeout DURATION on SIGINT/SIGTERM, time for dialogs in flight (default 5s)
  --max-connections N      dialogs served at once; others wait (default 10000)
  --help                   show this help

DURATION is a number with a unit: 250ms, 10s, 2m (a bare number means seconds).
)";

struct Options {
  std::string host = "127.0.0.1";
  unsigned port = 6142;
  std::size_t threads = 0;
  greeter::Config config;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "weft-greeter: %s\nTry 'weft-greeter --help'.\n", message.c_str());
  std::exit(2);
}

unsigned long long parse_number(std::string_view flag, std::string_view text,
                                unsigned long long max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos ||
      text.size() > 12) {
    usage_error(std::string(flag) + " wants a number, got '" + std::string(text) + "'");
  }
  const unsigned long long value = std::stoull(std::string(text));
  if (value > max) usage_error(std::string(flag) + " is at most " + std::to_string(max));
  return value;
}

std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
  const auto digits_end = text.find_first_not_of("0123456789");
  const std::string_view digits = text.substr(0, digits_end);
  const std::string_view unit =
      digits_end == std::string_view::npos ? "s" : text.substr(digits_end);
  const auto value = parse_number(flag, digits, 1'000'000'000);
  if (unit == "ms") return std::chrono::milliseconds(value);
  if (unit == "s") return std::chrono::seconds(value);
  if (unit == "m") return std::chrono::minutes(value);
  usage_error(std::string(flag) + " wants a duration such as 250ms, 10s or 2m, got '" +
              std::string(text) + "'");
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take_value = [&]() -> std::string_view {
      if (has_value) return value;
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(k_usage, stdout);
      std::exit(0);
    } else if (arg == "--quiet") {
      options.config.quiet = true;
    } else if (arg == "--host") {
      options.host = std::string(take_value());
    } else if (arg == "--port") {
      options.port = static_cast<unsigned>(parse_number(arg, take_value(), 65535));
    } else if (arg == "--threads") {
      options.threads = parse_number(arg, take_value(), 1024);
      if (options.threads == 0) usage_error("--threads is at least 1");
    } else if (arg == "--read-timeout") {
      options.config.read_timeout = parse_duration(arg, take_value());
    } else if (arg == "--drain-timeout") {
      options.config.drain_timeout = parse_duration(arg, take_value());
    } else if (arg == "--max-connections") {
      options.config.max_connections = parse_number(arg, take_value(), 10'000'000);
      if (options.config.max_connections == 0) usage_error("--max-connections is at least 1");
    } else {
      usage_error("unknown option '" + std::string(arg) + "'");
    }
  }
  return options;
}

weft::Task<void> until_signalled(weft::SignalFuture interrupt, weft::SignalFuture terminate) {
  auto which = co_await weft::select(std::move(interrupt), std::move(terminate));
  std::printf("received %s\n", which.index() == 0 ? "SIGINT" : "SIGTERM");
}

weft::Task<void> run(const Options& options, weft::TcpListener& listener,
                     greeter::ConnectionSlots& slots, greeter::Stats& stats) {
  // Watched from here on: a signal that arrives once "listening" is printed is never lost,
  // and never takes its default action of killing the server mid-dialog.
  auto interrupt = weft::signal(SIGINT);
  auto terminate = weft::signal(SIGTERM);
  std::printf("listening on port %u\n", listener.local_addr().port());
  std::fflush(stdout);
  co_await greeter::serve(listener, options.config, slots, stats,
                          until_signalled(std::move(interrupt), std::move(terminate)));
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const Options options = parse(argc, argv);
  weft_apps::raise_open_file_limit();
  weft::TcpListener listener;
  try {
    listener = weft::TcpListener::bind(weft::SocketAddress::from_host_port(
        options.host, static_cast<std::uint16_t>(options.port)));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "weft-greeter: cannot listen on %s port %u: %s\n", options.host.c_str(),
                 options.port, error.what());
    return 1;
  }
  // Declared before the runtime: dialogs cancelled at its shutdown still give their slots back.
  greeter::ConnectionSlots slots(options.config.max_connections);
  greeter::Stats stats;
  try {
    weft::Runtime runtime(
        weft::RuntimeOptions{.workers = options.threads, .thread_name_prefix = "greeter"});
    runtime.block_on(run(options, listener, slots, stats));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "weft-greeter: %s\n", error.what());
    return 1;
  }
  if (!options.config.quiet) {
    std::printf("served %llu dialog(s); bye\n",
                static_cast<unsigned long long>(stats.greeted.load()));
  }
  return 0;
}
