#include <doctest/doctest.h>

#include <pthread.h>

#include <filesystem>
#include <fstream>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace weft;
using weft::test::eventually;
using weft::test::Gate;

namespace {

Task<int> value(int v) {
  co_return v;
}

Task<void> count_up(std::atomic<int>* counter) {
  counter->fetch_add(1, std::memory_order_relaxed);
  co_return;
}

Task<void> fail(std::string message) {
  throw std::runtime_error(message);
  co_return;
}

Task<void> spin_with_yields(std::atomic<bool>* stop) {
  (void)co_await test::yield_until([stop] { return stop->load(std::memory_order_acquire); });
}

Task<int> spawn_many_and_count(int tasks) {
  std::atomic<int> counter{0};
  std::vector<JoinHandle<void>> handles;
  handles.reserve(static_cast<std::size_t>(tasks));
  for (int i = 0; i < tasks; ++i)
    handles.push_back(spawn(count_up(&counter)));
  for (auto& handle : handles)
    co_await handle;
  co_return counter.load(std::memory_order_relaxed);  // relaxed: read after every task is awaited
}

/// The scheduler states (R running, S sleeping, ...) of this process's threads whose name
/// starts with `prefix`, read from /proc.
std::vector<char> thread_states(const std::string& prefix) {
  std::vector<char> states;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind(prefix, 0) != 0) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');  // the state follows "(comm) "
    if (close != std::string::npos && close + 2 < line.size()) states.push_back(line[close + 2]);
  }
  return states;
}

}  // namespace

TEST_SUITE("spawn") {
  TEST_CASE("block_on returns the task's value") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    CHECK(runtime.block_on(value(7)) == 7);
  }

  TEST_CASE("a task spawned from a non-worker thread runs while the runtime is idle") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<int> counter{0};
    auto handle = runtime.spawn(count_up(&counter));
    handle.join();
    CHECK(counter.load(std::memory_order_relaxed) == 1);  // relaxed: read after the join
  }

  TEST_CASE("a task spawned from a non-worker thread runs while the runtime is loaded") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<bool> stop{false};
    std::vector<JoinHandle<void>> load;
    for (int i = 0; i < 8; ++i)
      load.push_back(runtime.spawn(spin_with_yields(&stop)));
    std::atomic<int> counter{0};
    std::vector<std::thread> spawners;
    for (int t = 0; t < 3; ++t) {
      spawners.emplace_back([&] {
        for (int i = 0; i < 1000; ++i)
          runtime.spawn(count_up(&counter));
      });
    }
    for (auto& thread : spawners)
      thread.join();
    // relaxed: count_up's increments are relaxed and publish nothing; only the count matters.
    CHECK(eventually([&] { return counter.load(std::memory_order_relaxed) == 3000; }));
    stop.store(true, std::memory_order_release);
    for (auto& handle : load)
      handle.join();
  }

  TEST_CASE("a million spawned tasks all run") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    CHECK(runtime.block_on(spawn_many_and_count(1'000'000)) == 1'000'000);
  }

  TEST_CASE("a task's exception propagates to join") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto handle = runtime.spawn(fail("from the task"));
    CHECK_THROWS_WITH_AS(handle.join(), "from the task", std::runtime_error);
  }

  TEST_CASE("a task's exception propagates to a task awaiting its handle") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto awaiter = []() -> Task<std::string> {
      try {
        co_await spawn(fail("inner"));
      } catch (const std::runtime_error& e) {
        co_return std::string(e.what());
      }
      co_return std::string("no exception");
    };
    CHECK(runtime.block_on(awaiter()) == "inner");
  }

  TEST_CASE("an exception escaping a detached task reaches the handler and the worker lives") {
    std::atomic<int> reported{0};
    std::string message;
    RuntimeOptions options{.workers = 1};
    options.on_unhandled_exception = [&](std::exception_ptr error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        message = e.what();
      }
      reported.fetch_add(1, std::memory_order_release);
    };
    Runtime runtime(std::move(options));
    runtime.spawn(fail("detached failure"));  // the handle is dropped at once
    CHECK(eventually([&] { return reported.load(std::memory_order_acquire) == 1; }));
    CHECK(message == "detached failure");
    CHECK(runtime.block_on(value(3)) == 3);  // the single worker still serves
  }

  TEST_CASE("an exception in a task whose handle is dropped after it finished is reported") {
    std::atomic<int> reported{0};
    RuntimeOptions options{.workers = 1};
    // release: pairs with the acquire load below; the report may come from a worker.
    options.on_unhandled_exception = [&](std::exception_ptr) {
      reported.fetch_add(1, std::memory_order_release);
    };
    Runtime runtime(std::move(options));
    {
      auto handle = runtime.spawn(fail("late"));
      CHECK(eventually([&] { return handle.is_finished(); }));
    }
    CHECK(reported.load(std::memory_order_acquire) == 1);  // acquire: pairs with the handler
  }

  TEST_CASE("an exception the joiner received is not reported again") {
    std::atomic<int> reported{0};
    RuntimeOptions options{.workers = 1};
    // relaxed: read after the shutdown has joined the workers.
    options.on_unhandled_exception = [&](std::exception_ptr) {
      reported.fetch_add(1, std::memory_order_relaxed);
    };
    Runtime runtime(std::move(options));
    CHECK_THROWS(runtime.block_on(fail("seen")));
    runtime.shutdown();
    CHECK(reported.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("weft::spawn outside a runtime throws logic_error and destroys the task") {
    std::atomic<int> live{0};
    auto body = [](weft::test::Tracked) -> Task<void> { co_return; };
    CHECK_THROWS_AS(spawn(body(weft::test::Tracked(live))), std::logic_error);
    // relaxed: no runtime, so the frame is made and destroyed on this thread.
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("spawning a task that was already polled throws invalid_argument") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    Task<int> task = value(1);
    Waker waker = noop_waker();
    Context cx(waker);
    REQUIRE(task.poll(cx).is_ready());
    CHECK_THROWS_AS(runtime.spawn(std::move(task)), std::invalid_argument);
  }

  TEST_CASE("joining on a worker thread throws logic_error instead of blocking it") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    auto body = []() -> Task<bool> {
      auto inner = spawn(value(1));
      try {
        (void)inner.join();
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    };
    CHECK(runtime.block_on(body()));
  }

  TEST_CASE("workers are named with the prefix and run the start and stop hooks once each") {
    std::atomic<int> started{0};
    std::atomic<int> stopped{0};
    RuntimeOptions options{.workers = 2, .thread_name_prefix = "tst"};
    // relaxed: read after the runtime's destructor has joined the workers.
    options.on_thread_start = [&] { started.fetch_add(1, std::memory_order_relaxed); };
    options.on_thread_stop = [&] { stopped.fetch_add(1, std::memory_order_relaxed); };
    {
      Runtime runtime(std::move(options));
      auto name = []() -> Task<std::string> {
        char buffer[16] = {};
        pthread_getname_np(pthread_self(), buffer, sizeof buffer);
        co_return std::string(buffer);
      };
      std::string worker_name = runtime.block_on(name());
      CHECK(worker_name.rfind("tst-", 0) == 0);
      CHECK(runtime.workers() == 2);
    }
    CHECK(started.load(std::memory_order_relaxed) == 2);  // relaxed: as the hooks above
    CHECK(stopped.load(std::memory_order_relaxed) == 2);
  }

  TEST_CASE("a throwing thread hook is reported and the worker still runs tasks") {
    std::atomic<int> reported{0};
    RuntimeOptions options{.workers = 1};
    options.on_thread_start = [] { throw std::runtime_error("hook"); };
    // relaxed: the only worker reports its hook's exception before it serves block_on, whose
    // return orders that report before the read below.
    options.on_unhandled_exception = [&](std::exception_ptr) {
      reported.fetch_add(1, std::memory_order_relaxed);
    };
    Runtime runtime(std::move(options));
    CHECK(runtime.block_on(value(9)) == 9);
    CHECK(reported.load(std::memory_order_relaxed) == 1);
  }

  TEST_CASE("an idle runtime parks every worker in the kernel, burning no CPU") {
    Runtime runtime(RuntimeOptions{.workers = 2, .thread_name_prefix = "idle"});
    CHECK(runtime.block_on(spawn_many_and_count(1000)) == 1000);
    // Once the work is done every worker spins briefly, then sleeps in futex_wait (state S).
    CHECK(eventually([] {
      auto states = thread_states("idle-");
      return states.size() == 2 &&
             std::all_of(states.begin(), states.end(), [](char s) { return s == 'S'; });
    }));
  }

  TEST_CASE("a runtime defaults to one worker per hardware thread") {
    Runtime runtime;
    unsigned cores = std::thread::hardware_concurrency();
    CHECK(runtime.workers() == (cores == 0 ? 1 : cores));
  }

  TEST_CASE("a task awaiting a gate opened by another thread resumes") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Gate gate;
    auto body = [&]() -> Task<int> {
      co_await gate.wait();
      co_return 11;
    };
    auto handle = runtime.spawn(body());
    REQUIRE(eventually([&] { return gate.has_waiter(); }));
    gate.open();
    CHECK(handle.join() == 11);
  }
}
