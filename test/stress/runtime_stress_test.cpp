// The stress suite: the runtime's racy scenarios, repeated WEFT_STRESS_ITERATIONS times each,
// with fresh runtimes so that start-up and shutdown races are exercised too. CI runs it under
// TSan and in a plain release build.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "../support.hpp"

#ifndef WEFT_STRESS_ITERATIONS
#define WEFT_STRESS_ITERATIONS 20
#endif

using namespace weft;
using weft::test::eventually;
using weft::test::Gate;
using weft::test::Tracked;

namespace {

constexpr int k_iterations = WEFT_STRESS_ITERATIONS;

Task<void> count_up(std::atomic<int>* counter) {
  counter->fetch_add(1, std::memory_order_relaxed);
  co_return;
}

Task<int> fan_out(int tasks) {
  std::atomic<int> counter{0};
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < tasks; ++i)
    handles.push_back(spawn(count_up(&counter)));
  for (auto& handle : handles)
    co_await handle;
  co_return counter.load(std::memory_order_relaxed);  // relaxed: read after every task is awaited
}

Task<int> yielder(Tracked /*guard*/, int yields) {
  for (int i = 0; i < yields; ++i)
    co_await yield_now();
  co_return yields;
}

Task<void> ping(int rounds, std::atomic<int>* done) {
  for (int i = 0; i < rounds; ++i) {
    auto [tx1, rx1] = oneshot<int>();
    auto [tx2, rx2] = oneshot<int>();
    auto pong = [](OneshotReceiver<int> in, OneshotSender<int> out) -> Task<void> {
      int v = co_await in;
      out.send(v + 1);
    };
    spawn(pong(std::move(rx1), std::move(tx2)));
    tx1.send(i);
    int answer = co_await rx2;
    if (answer != i + 1) co_return;
  }
  done->fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the tasks are joined
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("spawn and join from many threads, on fresh runtimes") {
    for (int iteration = 0; iteration < k_iterations; ++iteration) {
      Runtime runtime(RuntimeOptions{.workers = 2});
      std::atomic<int> counter{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 3; ++t) {
        threads.emplace_back([&] {
          std::vector<JoinHandle<void>> handles;
          for (int i = 0; i < 2000; ++i)
            handles.push_back(runtime.spawn(count_up(&counter)));
          for (auto& handle : handles)
            handle.join();
        });
      }
      CHECK(runtime.block_on(fan_out(5000)) == 5000);
      for (auto& thread : threads)
        thread.join();
      // relaxed: read after the threads (which joined their tasks) are joined. fan_out
      // counts its own 5000 separately.
      CHECK(counter.load(std::memory_order_relaxed) == 6000);
    }
  }

  TEST_CASE("wakes from several threads racing the gate's opening complete the task once") {
    for (int iteration = 0; iteration < k_iterations * 10; ++iteration) {
      Runtime runtime(RuntimeOptions{.workers = 2});
      Gate gate;
      std::atomic<int> completions{0};
      auto body = [](Gate* g, std::atomic<int>* c) -> Task<void> {
        co_await g->wait();
        c->fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the join
      };
      auto handle = runtime.spawn(body(&gate, &completions));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      std::vector<std::thread> wakers;
      for (int t = 0; t < 3; ++t) {
        wakers.emplace_back([&] {
          for (int i = 0; i < 50; ++i)
            gate.wake_without_opening();
        });
      }
      gate.open();
      for (auto& thread : wakers)
        thread.join();
      handle.join();
      CHECK(completions.load(std::memory_order_relaxed) == 1);  // relaxed: after the join
    }
  }

  TEST_CASE("aborts racing yields always end in a value or a cancellation, never a leak") {
    for (int iteration = 0; iteration < k_iterations; ++iteration) {
      std::atomic<int> live{0};
      {
        Runtime runtime(RuntimeOptions{.workers = 2});
        std::vector<JoinHandle<int>> handles;
        for (int i = 0; i < 200; ++i)
          handles.push_back(runtime.spawn(yielder(Tracked(live), i)));
        std::thread aborter([&] {
          for (std::size_t i = 0; i < handles.size(); i += 2)
            handles[i].abort();
        });
        aborter.join();
        int values = 0;
        int cancelled = 0;
        for (std::size_t i = 0; i < handles.size(); ++i) {
          try {
            int value = handles[i].join();  // outside CHECK, which would catch the throw
            CHECK(value == static_cast<int>(i));
            ++values;
          } catch (const TaskCancelled&) {
            CHECK(i % 2 == 0);
            ++cancelled;
          }
        }
        CHECK(values + cancelled == 200);
        CHECK(values >= 100);
      }
      CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after the shutdown
    }
  }

  TEST_CASE("shutdown while other threads wake and spawn loses and leaks nothing") {
    for (int iteration = 0; iteration < k_iterations * 5; ++iteration) {
      std::atomic<int> live{0};
      std::vector<Gate> gates(20);
      std::atomic<bool> stop{false};
      std::vector<std::thread> wakers;
      {
        Runtime runtime(RuntimeOptions{.workers = 2});
        for (auto& gate : gates) {
          auto body = [](Tracked, Gate* g) -> Task<void> {
            for (;;) {
              co_await g->wait();
              co_await yield_now();
            }
          };
          runtime.spawn(body(Tracked(live), &gate));
        }
        for (int t = 0; t < 2; ++t) {
          wakers.emplace_back([&] {
            // acquire: pairs with the test's release store.
            for (int round = 0; round < 200 && !stop.load(std::memory_order_acquire); ++round) {
              for (auto& gate : gates)
                gate.wake_without_opening();
            }
          });
        }
        auto spawner = [](Runtime* rt, std::atomic<int>* l) {
          for (int i = 0; i < 200; ++i) {
            auto body = [](Tracked) -> Task<void> { co_await yield_now(); };
            rt->spawn(body(Tracked(*l)));
          }
        };
        spawner(&runtime, &live);
      }                                             // shutdown races the wakers
      stop.store(true, std::memory_order_release);  // release: pairs with the wakers' acquire
      for (auto& thread : wakers)
        thread.join();
      gates.clear();  // drops the last wakers: frees the headers
      // relaxed: read after the shutdown, the waker threads' join, and the clear above.
      CHECK(live.load(std::memory_order_relaxed) == 0);
    }
  }

  TEST_CASE("tasks spawned from another thread while the runtime shuts down all finish") {
    for (int iteration = 0; iteration < k_iterations * 5; ++iteration) {
      std::atomic<int> live{0};
      std::vector<JoinHandle<void>> handles;
      std::atomic<bool> started{false};
      {
        Runtime runtime(RuntimeOptions{.workers = 2});
        std::thread spawner([&] {
          started.store(true, std::memory_order_release);  // release: pairs with the acquire below
          for (int i = 0; i < 300; ++i) {
            auto body = [](Tracked) -> Task<void> { co_await yield_now(); };
            handles.push_back(runtime.spawn(body(Tracked(live))));
          }
        });
        // acquire: pairs with the spawner's release store.
        (void)eventually([&] { return started.load(std::memory_order_acquire); });
        runtime.shutdown();  // races the spawner's pushes
        spawner.join();
      }
      // Each ran or was cancelled; none is left hanging with its frame alive.
      for (auto& handle : handles)
        CHECK(handle.is_finished());
      handles.clear();  // a finished task keeps its frame (the result) until its handle goes
      // relaxed: read after the shutdown, the spawner's join, and the clear above.
      CHECK(live.load(std::memory_order_relaxed) == 0);
    }
  }

  TEST_CASE("ping-pong over oneshot channels across workers delivers every message") {
    for (int iteration = 0; iteration < k_iterations; ++iteration) {
      Runtime runtime(RuntimeOptions{.workers = 2});
      std::atomic<int> done{0};
      std::vector<JoinHandle<void>> handles;
      for (int i = 0; i < 50; ++i)
        handles.push_back(runtime.spawn(ping(100, &done)));
      for (auto& handle : handles)
        handle.join();
      CHECK(done.load(std::memory_order_relaxed) == 50);  // relaxed: read after the joins
    }
  }
}
