// The cooperative budget: a task whose channel, lock or socket is always ready still gives its
// worker back every k_coop_budget operations, so the tasks queued behind it run.
#include <doctest/doctest.h>

#include <atomic>
#include <span>
#include <string>
#include <vector>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;

namespace {

constexpr int k_operations = 10'000;

Task<void> set_flag(std::atomic<bool>& flag) {
  flag.store(true, std::memory_order_release);  // release: pairs with the busy task's acquire
  co_return;
}

/// Runs `busy` on one worker; it spawns a task that sets the flag, which can only run when
/// `busy` gives the worker back. Returns how many operations `busy` had done when it first
/// saw the flag, or -1 if never.
template <class Busy>
int operations_before_others_ran(Busy busy) {
  Runtime runtime(RuntimeOptions{.workers = 1});
  std::atomic<bool> other_ran{false};
  return runtime.block_on(busy(other_ran));
}

}  // namespace

TEST_SUITE("coop") {
  TEST_CASE("a sender that always finds room still lets the tasks behind it run") {
    const int seen_at = operations_before_others_ran([](std::atomic<bool>& flag) -> Task<int> {
      auto [tx, rx] = mpsc::channel<int>(k_operations);
      spawn(set_flag(flag));
      for (int i = 0; i < k_operations; ++i) {
        // acquire: pairs with set_flag's release store.
        if (flag.load(std::memory_order_acquire)) co_return i;
        co_await tx.send(i);
      }
      co_return -1;
    });
    CHECK(seen_at > 0);
    CHECK(seen_at <= static_cast<int>(detail::k_coop_budget) + 1);
  }

  TEST_CASE("a task that keeps taking a free mutex still lets the tasks behind it run") {
    const int seen_at = operations_before_others_ran([](std::atomic<bool>& flag) -> Task<int> {
      Mutex<int> mutex(0);
      spawn(set_flag(flag));
      for (int i = 0; i < k_operations; ++i) {
        // acquire: pairs with set_flag's release store.
        if (flag.load(std::memory_order_acquire)) co_return i;
        *co_await mutex.lock() += 1;
      }
      co_return -1;
    });
    CHECK(seen_at > 0);
    CHECK(seen_at <= static_cast<int>(detail::k_coop_budget) + 1);
  }

  TEST_CASE("a receiver with messages always queued still lets the tasks behind it run") {
    const int seen_at = operations_before_others_ran([](std::atomic<bool>& flag) -> Task<int> {
      auto [tx, rx] = mpsc::channel<int>(k_operations);
      for (int i = 0; i < k_operations; ++i)
        (void)tx.try_send(i);
      spawn(set_flag(flag));
      for (int i = 0; i < k_operations; ++i) {
        // acquire: pairs with set_flag's release store.
        if (flag.load(std::memory_order_acquire)) co_return i;
        (void)co_await rx.recv();
      }
      co_return -1;
    });
    CHECK(seen_at > 0);
  }

  TEST_CASE("a reader whose socket always has data still lets the tasks behind it run") {
    const int seen_at = operations_before_others_ran([](std::atomic<bool>& flag) -> Task<int> {
      auto listener = TcpListener::bind("127.0.0.1:0");
      TcpStream client = co_await TcpStream::connect(listener.local_addr());
      TcpStream server = (co_await listener.accept()).stream;
      const std::string bytes(k_operations, 'x');  // fits the loopback socket buffers
      co_await client.write_all(bytes);
      spawn(set_flag(flag));
      char byte;
      for (int i = 0; i < k_operations; ++i) {
        // acquire: pairs with set_flag's release store.
        if (flag.load(std::memory_order_acquire)) co_return i;
        if (co_await server.read(std::span<char>(&byte, 1)) != 1) co_return -1;
      }
      co_return -1;
    });
    CHECK(seen_at > 0);
    CHECK(seen_at <= static_cast<int>(detail::k_coop_budget) + 2);
  }

  TEST_CASE("an acceptor whose backlog is always full still lets the tasks behind it run") {
    constexpr int k_connections = 200;  // more than one budget's worth
    const int seen_at = operations_before_others_ran([](std::atomic<bool>& flag) -> Task<int> {
      auto listener = TcpListener::bind("127.0.0.1:0");
      std::vector<TcpStream> clients;
      for (int i = 0; i < k_connections; ++i)
        clients.push_back(co_await TcpStream::connect(listener.local_addr()));
      spawn(set_flag(flag));
      std::vector<TcpStream> accepted;
      for (int i = 0; i < k_connections; ++i) {
        // acquire: pairs with set_flag's release store.
        if (flag.load(std::memory_order_acquire)) co_return i;
        accepted.push_back((co_await listener.accept()).stream);
      }
      co_return -1;
    });
    CHECK(seen_at > 0);
    CHECK(seen_at <= static_cast<int>(detail::k_coop_budget) + 1);
  }

  TEST_CASE("polling by hand off a worker is never throttled") {
    Semaphore semaphore(1'000);
    for (int i = 0; i < 1'000; ++i) {
      auto acquire = semaphore.acquire();
      auto poll = test::poll_by_hand(acquire);
      REQUIRE(poll.is_ready());
      poll.take().forget();
    }
    CHECK(semaphore.available_permits() == 0);
  }
}
