// The greeter under load, in-process: 2,000 clients at once, each a weft task in a runtime of
// its own, against a greeter in another runtime. Every reply must be exact, and the process's
// descriptors must return to their baseline once the clients are done.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "../support.hpp"
#include "greeter.hpp"

using namespace weft;
using namespace std::chrono_literals;
using weft::test::eventually;
using weft::test::open_fd_count;

namespace {

constexpr int k_clients = 2000;

Task<void> until_received(OneshotReceiver<int> stop) {
  try {
    (void)co_await stop;
  } catch (const ChannelClosed&) {
  }
}

/// One simulated client: the seed's dialog, checked byte for byte. Returns an empty string
/// on success, else what went wrong.
Task<std::string> client(SocketAddress server, int id, std::atomic<int>& waiting,
                         weft::test::BroadcastGate& all_connected) {
  auto stream = co_await TcpStream::connect(server);
  auto prompt = co_await stream.read_until('\n', 64);
  if (prompt.bytes != "Who are you?\n") co_return "bad prompt: " + prompt.bytes;
  // Hold every dialog open until all clients have their prompt: 2,000 at once, truly.
  // release: pairs with the test's acquire load; this client has its prompt.
  waiting.fetch_sub(1, std::memory_order_release);
  co_await all_connected.wait();
  const std::string name = "client-" + std::to_string(id);
  co_await stream.write_all(name + "\n");
  auto reply = co_await stream.read_until('\n', 128);
  if (reply.bytes != "Thanks for dialing in, " + name + "!\n")
    co_return "bad reply: " + reply.bytes;
  char extra;
  if (co_await stream.read({&extra, 1}) != 0) co_return "bytes after the reply";
  co_return "";
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("two thousand concurrent clients all get their exact reply, and no descriptor leaks") {
    rlimit limit{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    const rlim_t needed = 2 * k_clients + 256;
    if (limit.rlim_cur < needed) {
      limit.rlim_cur = std::min<rlim_t>(needed, limit.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    REQUIRE_MESSAGE(limit.rlim_cur >= needed,
                    "the hard RLIMIT_NOFILE is too low for 2,000 clients and their server");

    greeter::Config config;
    config.quiet = true;
    greeter::ConnectionSlots slots(config.max_connections);
    greeter::Stats stats;
    // libuv opens a process-wide signal pipe with the first loop; count from after that.
    { Runtime warm_up(RuntimeOptions{.workers = 1}); }
    const int baseline = open_fd_count();
    {
      auto listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"), 4096);
      const SocketAddress address = listener.local_addr();
      Runtime server_runtime(RuntimeOptions{.workers = 2, .thread_name_prefix = "server"});
      auto [stop_sender, stop_receiver] = oneshot<int>();
      auto served = server_runtime.spawn(
          greeter::serve(listener, config, slots, stats, until_received(std::move(stop_receiver))));
      {
        Runtime client_runtime(RuntimeOptions{.workers = 2, .thread_name_prefix = "client"});
        std::atomic<int> waiting{k_clients};
        weft::test::BroadcastGate all_connected;
        std::vector<JoinHandle<std::string>> clients;
        clients.reserve(k_clients);
        for (int id = 0; id < k_clients; ++id)
          clients.push_back(client_runtime.spawn(client(address, id, waiting, all_connected)));
        // acquire: pairs with each client's release fetch_sub (one release sequence).
        REQUIRE(eventually([&] { return waiting.load(std::memory_order_acquire) == 0; }, 60s));
        CHECK(slots.in_use() >= k_clients);  // every dialog is open at once
        all_connected.open();
        int failures = 0;
        for (auto& handle : clients) {
          std::string error = handle.join();
          if (!error.empty() && ++failures <= 5) MESSAGE(error);
        }
        CHECK(failures == 0);
      }
      // relaxed: Stats are relaxed counters (greeter.hpp); each client saw its server end
      // close, after the server counted the dialog as greeted.
      CHECK(stats.greeted.load(std::memory_order_relaxed) == k_clients);
      CHECK(
          eventually([&] { return stats.finished.load(std::memory_order_relaxed) == k_clients; }));
      (void)stop_sender.send(1);
      served.join();
    }
    const bool returned = eventually([&] { return open_fd_count() == baseline; });
    CAPTURE(open_fd_count() - baseline);
    CHECK(returned);
  }
}
