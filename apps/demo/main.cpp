// weft-demo: shows the scheduler at work. A parent task fans out work to many child tasks,
// which hop between workers as they yield; the parent joins them all and reports which
// workers ran them.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "weft.hpp"

namespace {

std::mutex g_mutex;
std::map<std::thread::id, int> g_polls_by_thread;

weft::Task<long> sum_range(long from, long to) {
  long total = 0;
  for (long i = from; i < to; ++i) {
    total += i;
    if (i % 1000 == 0) {
      {
        std::lock_guard lock(g_mutex);
        ++g_polls_by_thread[std::this_thread::get_id()];
      }
      co_await weft::yield_now();  // let other tasks (and thieves) in
    }
  }
  co_return total;
}

weft::Task<long> fan_out(int tasks, long per_task) {
  std::vector<weft::JoinHandle<long>> handles;
  for (int i = 0; i < tasks; ++i) {
    handles.push_back(weft::spawn(sum_range(i * per_task, (i + 1) * per_task)));
  }
  long total = 0;
  for (auto& handle : handles)
    total += co_await handle;
  co_return total;
}

}  // namespace

int main() {
  weft::Runtime runtime;
  std::printf("weft runtime with %zu workers\n", runtime.workers());

  const int tasks = 64;
  const long per_task = 100'000;
  auto start = std::chrono::steady_clock::now();
  long total = runtime.block_on(fan_out(tasks, per_task));
  auto elapsed = std::chrono::steady_clock::now() - start;

  long expected = 0;
  for (long i = 0; i < tasks * per_task; ++i)
    expected += i;
  std::printf("%d tasks summed the integers below %ld: %ld (%s) in %.1f ms\n", tasks,
              tasks * per_task, total, total == expected ? "correct" : "WRONG",
              std::chrono::duration<double, std::milli>(elapsed).count());
  int thread_number = 0;
  for (auto& [id, polls] : g_polls_by_thread) {
    std::printf("  worker %d ran %d slices\n", thread_number++, polls);
  }
  return total == expected ? 0 : 1;
}
