// Futures and tasks that the combinator tests (select, join) race and wait on.
#pragma once

#include <atomic>
#include <stdexcept>
#include <utility>

#include "support.hpp"

namespace weft::test {

/// A leaf future that is never ready and counts its destructions (a moved-from one does not
/// count).
template <class T = int>
class Never {
 public:
  explicit Never(std::atomic<int>& dropped) : m_dropped(&dropped) {}
  Never(Never&& other) noexcept : m_dropped(std::exchange(other.m_dropped, nullptr)) {}
  Never& operator=(Never&&) = delete;
  ~Never() {
    // acq_rel: as Tracked's count, a test may read it while the dropping thread runs.
    if (m_dropped != nullptr) m_dropped->fetch_add(1, std::memory_order_acq_rel);
  }
  Poll<T> poll(Context&) { return pending; }

 private:
  std::atomic<int>* m_dropped;
};

/// A leaf future that is ready at once with `value`, counting its polls.
struct Ready {
  int value;
  int* polls;
  Poll<int> poll(Context&) {
    ++*polls;
    return Poll<int>(value);
  }
};

/// Holds a Tracked in its frame while it waits for `gate`, then returns `value`.
inline Task<int> value_after(Gate& gate, int value, std::atomic<int>& live) {
  Tracked tracked(live);
  co_await gate.wait();
  co_return value;
}

inline Task<int> throw_after(Gate& gate) {
  co_await gate.wait();
  throw std::runtime_error("child failed");
}

inline Task<int> value_now(int value) {
  co_return value;
}

inline Task<void> finish_now() {
  co_return;
}

}  // namespace weft::test
