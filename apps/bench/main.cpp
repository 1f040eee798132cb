// weft-bench: scheduler micro-benchmarks with the same shapes as the peer anchors
// (shared/anchors/{tokio,go,tbb}-sched-bench), so the numbers can be set side by side.
//   spawn_many_local  : a task spawns 10,000 tasks; each decrements a counter; last signals
//   spawn_many_remote : the same 10,000 spawns from a thread outside the runtime
//   yield_many        : 200 tasks each yield 1,000 times
//   ping_pong         : 1,000 rounds; each round spawns a task that spawns a pair
//                       exchanging one message each way over oneshot channels
//   chained_spawn     : a chain of 1,000 tasks, each spawning the next
//   mpsc_throughput   : 4 producer tasks send 250,000 messages each over one bounded
//                       channel (capacity 1,024) to 1 consumer task; ns per message
//   mutex_contended   : 8 tasks each lock and unlock one async mutex 100,000 times;
//                       ns per lock/unlock
// Each benchmark runs 3 times to warm up, then REPS times; it prints `NAME median-ns-per-unit`.
//
// Usage: weft-bench [FILTER]   runs the benchmarks whose name contains FILTER.
//        weft-bench --idle-cpu  measures the CPU an idle runtime burns over 5 seconds, after a
//                               burst of work, and prints `idle_cpu_percent X` (of one core).
// WORKERS sets the number of worker threads (default 2), as in the Tokio anchor. WARMUPS and
// REPS override the warm-up and repetition counts of every benchmark.
// WEFT_METRICS=off runs without metrics and without the stall detector (both on by default);
// metrics-only and stalls-only keep one of them.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include <time.h>

#include "weft.hpp"

namespace {

constexpr std::size_t k_default_workers = 2;
constexpr int k_warmup_runs = 3;

constexpr std::size_t k_spawn = 10'000;
constexpr std::size_t k_yield_tasks = 200;
constexpr std::size_t k_yields_per_task = 1'000;
constexpr std::size_t k_ping_pong_rounds = 1'000;
constexpr std::size_t k_chain = 1'000;
constexpr std::size_t k_producers = 4;
constexpr std::size_t k_messages = 1'000'000;
constexpr std::size_t k_channel_capacity = 1'024;
constexpr std::size_t k_lockers = 8;
constexpr std::size_t k_locks = 100'000;

/// Tells the main thread that tasks have finished, standing in for the anchors' std
/// sync_channel<()> / Go `chan struct{}`: every send is counted and one recv consumes one send.
/// The receiver spins briefly and then sleeps on a futex, and a send costs one RMW plus a check
/// for sleepers, which is what those channels cost too, so the measurement is no cheaper.
class DoneSignal {
 public:
  /// Any thread.
  void send() noexcept {
    // release: the sender's work is visible to the receiver; pairs with the acquire in recv().
    m_sent.fetch_add(1, std::memory_order_release);
    m_sent.notify_one();
  }

  /// Main thread only; blocks until one send has not been consumed yet, then consumes it.
  void recv() noexcept {
    // acquire: pairs with the release in send().
    std::uint32_t sent = m_sent.load(std::memory_order_acquire);
    for (;;) {
      if (sent == 0) {
        m_sent.wait(0, std::memory_order_acquire);
        sent = m_sent.load(std::memory_order_acquire);
        continue;
      }
      // acquire: as above; on failure `sent` is reloaded and the loop retries.
      if (m_sent.compare_exchange_weak(sent, sent - 1, std::memory_order_acquire,
                                       std::memory_order_acquire)) {
        return;
      }
    }
  }

 private:
  std::atomic<std::uint32_t> m_sent{0};
};

/// What the spawn and chain benchmarks share with their tasks. It is created before the
/// runtime, so it outlives every task; tasks hold a plain pointer to it, as the Go and TBB
/// anchors use shared variables (the Tokio anchor clones an Arc per task instead).
struct Shared {
  std::atomic<std::size_t> remaining{0};
  DoneSignal done;
};

std::string_view g_filter;

/// An environment variable holding a count, or `fallback` when it is unset or malformed.
int count_from_env(const char* variable, int fallback) {
  const char* text = std::getenv(variable);
  if (text == nullptr) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return (end == text || *end != '\0' || value < 0 || value > 1'000'000) ? fallback
                                                                         : static_cast<int>(value);
}

template <class F>
void bench(std::string_view name, std::size_t units, int reps, F run) {
  if (name.find(g_filter) == std::string_view::npos) return;
  // WARMUPS and REPS override the counts, for counting instructions (metrics-cost.sh).
  const int warmups = count_from_env("WARMUPS", k_warmup_runs);
  reps = std::max(1, count_from_env("REPS", reps));
  for (int i = 0; i < warmups; ++i)
    run();
  std::vector<double> per_unit;
  per_unit.reserve(static_cast<std::size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    auto start = std::chrono::steady_clock::now();
    run();
    std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
    per_unit.push_back(elapsed.count() / static_cast<double>(units));
  }
  std::sort(per_unit.begin(), per_unit.end());
  // The upper median for an even count, as the anchors take v[len / 2].
  std::printf("%.*s %.1f\n", static_cast<int>(name.size()), name.data(),
              per_unit[per_unit.size() / 2]);
  std::fflush(stdout);
}

// --- spawn_many_local / spawn_many_remote ---------------------------------------------------

weft::Task<void> count_down(Shared* shared) {
  // relaxed: only the count matters; the signal's release/acquire orders the rest.
  if (shared->remaining.fetch_sub(1, std::memory_order_relaxed) == 1) shared->done.send();
  co_return;
}

weft::Task<void> spawn_many(Shared* shared) {
  // The handles are dropped at once: the tasks run detached, as the anchors' do.
  for (std::size_t i = 0; i < k_spawn; ++i)
    weft::spawn(count_down(shared));
  co_return;
}

// --- yield_many -----------------------------------------------------------------------------

weft::Task<void> yield_many(Shared* shared) {
  for (std::size_t i = 0; i < k_yields_per_task; ++i)
    co_await weft::yield_now();
  shared->done.send();
}

// --- ping_pong ------------------------------------------------------------------------------

/// One ping_pong run's completion; shared by its round tasks the way the Tokio anchor shares
/// an Arc<Mutex<Option<Sender>>>, since the last round may still hold it after the run ends.
struct PingPongRun {
  std::atomic<std::size_t> remaining{k_ping_pong_rounds};
  std::mutex mutex;
  std::optional<weft::OneshotSender<void>> done;
};

weft::Task<void> pong(weft::OneshotReceiver<void> ping, weft::OneshotSender<void> reply) {
  co_await ping;
  reply.send();
}

weft::Task<void> ping_pong_round(std::shared_ptr<PingPongRun> run) {
  auto [ping_tx, ping_rx] = weft::oneshot<void>();
  auto [pong_tx, pong_rx] = weft::oneshot<void>();
  weft::spawn(pong(std::move(ping_rx), std::move(pong_tx)));
  ping_tx.send();
  co_await pong_rx;
  // relaxed: only the count matters; the oneshot orders the completion.
  if (run->remaining.fetch_sub(1, std::memory_order_relaxed) == 1) {
    std::lock_guard lock(run->mutex);
    run->done->send();
  }
}

weft::Task<void> wait_for(weft::OneshotReceiver<void> done) {
  co_await done;
}

// --- chained_spawn --------------------------------------------------------------------------

weft::Task<void> chain_link(Shared* shared, std::size_t n) {
  if (n == 0) {
    shared->done.send();
  } else {
    weft::spawn(chain_link(shared, n - 1));
  }
  co_return;
}

std::size_t workers_from_env() {
  const char* text = std::getenv("WORKERS");
  if (text == nullptr) return k_default_workers;
  char* end = nullptr;
  unsigned long value = std::strtoul(text, &end, 10);
  return (end == text || *end != '\0' || value == 0) ? k_default_workers : value;
}

}  // namespace

/// CPU time (user + system) this process has used so far.
std::chrono::duration<double> process_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

int measure_idle_cpu(std::size_t workers) {
  Shared shared;
  weft::Runtime rt(weft::RuntimeOptions{.workers = workers});
  shared.remaining.store(k_spawn, std::memory_order_relaxed);
  rt.spawn(spawn_many(&shared));  // a burst of work first, so every worker has run
  shared.done.recv();
  const auto window = std::chrono::seconds(5);
  const auto cpu_before = process_cpu_time();
  std::this_thread::sleep_for(window);  // the measurement window, while the runtime idles
  const auto cpu = process_cpu_time() - cpu_before;
  std::printf("idle_cpu_percent %.3f\n", 100.0 * cpu.count() / window.count());
  return 0;
}

// --- mpsc_throughput ------------------------------------------------------------------------

weft::Task<void> produce(weft::mpsc::Sender<std::uint64_t> sender_argument) {
  // A local, not the parameter, so that the sender goes when the task finishes (a finished
  // task's parameters live as long as its JoinHandle).
  auto sender = std::move(sender_argument);
  for (std::uint64_t i = 0; i < k_messages / k_producers; ++i)
    co_await sender.send(i);
}

weft::Task<std::size_t> consume(weft::mpsc::Receiver<std::uint64_t> receiver) {
  std::size_t received = 0;
  while (co_await receiver.recv())
    ++received;
  co_return received;
}

weft::Task<void> mpsc_round() {
  auto [sender, receiver] = weft::mpsc::channel<std::uint64_t>(k_channel_capacity);
  for (std::size_t i = 0; i < k_producers; ++i)
    weft::spawn(produce(sender));
  { auto last = std::move(sender); }
  auto consumer = weft::spawn(consume(std::move(receiver)));
  if (co_await consumer != k_messages) throw std::logic_error("mpsc_throughput lost messages");
}

// --- mutex_contended ------------------------------------------------------------------------

weft::Task<void> lock_many(std::shared_ptr<weft::Mutex<std::uint64_t>> mutex) {
  for (std::size_t i = 0; i < k_locks; ++i)
    *co_await mutex->lock() += 1;
}

weft::Task<void> mutex_round() {
  auto mutex = std::make_shared<weft::Mutex<std::uint64_t>>(0);
  std::vector<weft::JoinHandle<void>> lockers;
  lockers.reserve(k_lockers);
  for (std::size_t i = 0; i < k_lockers; ++i)
    lockers.push_back(weft::spawn(lock_many(mutex)));
  for (auto& locker : lockers)
    co_await locker;
  if (*co_await mutex->lock() != k_lockers * k_locks) {
    throw std::logic_error("mutex_contended lost increments");
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--idle-cpu") {
    return measure_idle_cpu(workers_from_env());
  }
  if (argc > 1) g_filter = argv[1];
  // Declared before the runtime so that it outlives every task (see Shared).
  Shared shared;
  // WEFT_METRICS=off turns off metrics and the stall detector, to measure what they cost.
  const char* metrics_env = std::getenv("WEFT_METRICS");
  const std::string_view observe = metrics_env == nullptr ? "on" : metrics_env;
  weft::RuntimeOptions options{.workers = workers_from_env()};
  options.enable_metrics = observe != "off" && observe != "stalls-only";
  if (observe == "off" || observe == "metrics-only") {
    options.stall_threshold = std::chrono::nanoseconds::zero();
  }
  weft::Runtime rt(std::move(options));

  bench("spawn_many_local", k_spawn, 50, [&] {
    shared.remaining.store(k_spawn, std::memory_order_relaxed);
    // One spawn from outside, whose task then spawns locally: Tokio's block_on here only
    // spawns the outer task and returns, so the main thread does no extra join.
    rt.spawn(spawn_many(&shared));
    shared.done.recv();
  });

  bench("spawn_many_remote", k_spawn, 50, [&] {
    shared.remaining.store(k_spawn, std::memory_order_relaxed);
    for (std::size_t i = 0; i < k_spawn; ++i)
      rt.spawn(count_down(&shared));
    shared.done.recv();
  });

  bench("yield_many", k_yield_tasks * k_yields_per_task, 20, [&] {
    for (std::size_t i = 0; i < k_yield_tasks; ++i)
      rt.spawn(yield_many(&shared));
    for (std::size_t i = 0; i < k_yield_tasks; ++i)
      shared.done.recv();
  });

  bench("ping_pong", k_ping_pong_rounds, 50, [&] {
    auto run = std::make_shared<PingPongRun>();
    auto [done_tx, done_rx] = weft::oneshot<void>();
    run->done.emplace(std::move(done_tx));
    // Tokio's block_on polls its future on the calling thread, so its rounds are spawned
    // from outside the workers; spawn them from here too, then wait for the last one.
    for (std::size_t i = 0; i < k_ping_pong_rounds; ++i)
      rt.spawn(ping_pong_round(run));
    rt.block_on(wait_for(std::move(done_rx)));
  });

  bench("chained_spawn", k_chain, 50, [&] {
    rt.spawn(chain_link(&shared, k_chain));
    shared.done.recv();
  });

  bench("mpsc_throughput", k_messages, 10, [&] { rt.block_on(mpsc_round()); });

  bench("mutex_contended", k_lockers * k_locks, 10, [&] { rt.block_on(mutex_round()); });
  return 0;
}
