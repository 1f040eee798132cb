// weft::detail::LocalQueue: one worker's fixed-capacity, lock-free FIFO run queue.
//
// The design follows Tokio's runtime/scheduler/multi_thread/queue.rs. One owner thread pushes
// and pops. Any other worker may steal half of the queue into its own LocalQueue, and claims
// that half with a single CAS.
//
// Fields and their writers
//   m_tail   u32. Only the owner writes it: a release store in push_back(), or in steal_into()
//            when this queue is the destination. Any thread may read it.
//   m_head   u64, holding two u32 halves: (steal << 32) | real. The owner CASes it (pop, the
//            overflow in push_back) and so do thieves (steal_into on this queue as victim).
//     real   the position of the next item to hand out. Positions in [real, tail) are queued
//            and can be claimed by pop(), by an overflow, or by a thief.
//     steal  the first position that a thief is still moving out. The positions in
//            [steal, real) were claimed by exactly one thief that has not finished.
//            steal == real means that no steal is in progress.
//   m_slots  raw storage. Position pos lives in slot pos & k_mask and holds a live T exactly
//            while pos is in [steal, tail). Whoever claims a position moves the item out and
//            destroys it.
//
// Invariants
//   - steal <= real <= tail and tail - steal <= Capacity, in wrapping u32 arithmetic.
//   - The owner constructs an item in slot `tail` only when tail - steal < Capacity. It never
//     writes a slot in [steal, tail), so a thief copying [steal, real) is never overwritten
//     (the bug class of tokio#2387).
//   - At most one steal is in progress. A thief starts only when steal == real. Only that
//     thief moves steal, and it moves it up to real once its items have left the slots.
//   - The owner's overflow also requires steal == real, so it never races a copying thief.
//
// Thread rules
//   owner thread only: push_back(), pop(), and being the `dst` of steal_into().
//   any thread:        steal_into() on a victim (`this`) that the caller does not own, len(),
//                      is_empty(), capacity().
//   The destructor runs when no other thread can touch the queue.
//
// Index wrap-around. Indices are u32 and wrap modulo 2^32 on purpose. The code never compares
// two raw indices with <. It only tests them for equality or takes differences (a - b). Every
// difference it relies on (tail - steal, tail - real, real - steal) lies in [0, Capacity] and
// Capacity <= 2^31, so the wrapped difference is the true one. No index ever moves backwards:
// pop() checks real == tail before it claims anything, so the "pop from empty wraps to full"
// bug of unsigned Chase-Lev deques (crossbeam#33) cannot happen. A CAS on m_head would suffer
// ABA only if real advanced by exactly 2^32 between a thief's load and its CAS (the failure
// tokio#5041 hit with u16 indices).
//
// Memory ordering. Slot contents are plain memory and are ordered only by the atomics:
//   - push_back (and steal_into, for its destination) constructs an item and then does a
//     release store of m_tail. A thief does an acquire load of m_tail before it reads a slot.
//   - A thief moves its items out and then does a release CAS that sets steal = real. The
//     owner does an acquire load of m_head before it reuses a slot.
//   - Every CAS that advances real is a release. Every load of m_head that feeds a read of
//     m_tail is an acquire. So any reader that sees a real also sees an m_tail >= real, and
//     tail - real cannot underflow.
//   There are no atomic_thread_fence calls, because TSan does not model them
//   (google/sanitizers#1352).
//
// Rejected alternative: a Chase-Lev deque. Its owner pops LIFO, and it must grow its array,
// which brings buffer reclamation hazards (CVE-2021-32810). A fixed ring with an overflow
// sink keeps FIFO fairness, and stealing half in one CAS amortises the thief's cost.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

namespace weft::detail {

/// Aborts with a message when a queue invariant is broken. This check stays on in release
/// builds: a broken invariant means that a task is lost or run twice.
inline void local_queue_check(bool ok, const char* what) noexcept {
  if (!ok) [[unlikely]] {
    std::fprintf(stderr, "weft: LocalQueue invariant violated: %s\n", what);
    std::abort();
  }
}

template <class T, std::uint32_t Capacity = 256>
class LocalQueue {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "LocalQueue Capacity must be a power of two >= 2");
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "LocalQueue items are moved between threads' queues and must not throw on move");
  static_assert(std::is_nothrow_destructible_v<T>,
                "LocalQueue items must not throw on destruction");

 public:
  /// `initial_index` is for tests: it starts the indices near the u32 wrap point. Production
  /// code uses the default.
  explicit LocalQueue(std::uint32_t initial_index = 0) noexcept
      : m_head(pack(initial_index, initial_index)), m_tail(initial_index) {}

  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;
  LocalQueue(LocalQueue&&) = delete;
  LocalQueue& operator=(LocalQueue&&) = delete;

  /// Destroys every item still queued, exactly once. No other thread may touch the queue.
  ~LocalQueue() {
    // relaxed (both loads): no other thread may access the queue now. Whatever made that true
    // (a thread join or a hand-off) already ordered their earlier accesses before this one.
    const auto [steal, real] = unpack(m_head.load(std::memory_order_relaxed));
    const std::uint32_t tail = m_tail.load(std::memory_order_relaxed);
    local_queue_check(steal == real, "queue destroyed while a steal is in progress");
    for (std::uint32_t pos = real; pos != tail; ++pos)
      slot(pos)->~T();
  }

  [[nodiscard]] static constexpr std::uint32_t capacity() noexcept { return Capacity; }

  /// Owner thread only. Appends `item`. When the queue is full and no steal is in progress, the
  /// Capacity/2 oldest items and `item` are moved out and passed to `overflow(std::span<T>)` in
  /// one call, oldest first. When the queue is full and a steal is in progress, only `item` is
  /// passed (a span of 1), because the thief is about to free room. `overflow` must move the
  /// items out of the span. When it returns, or throws, the queue destroys what remains in
  /// the span.
  template <class Overflow>
  void push_back(T item, Overflow&& overflow) {
    static_assert(std::is_invocable_v<Overflow&, std::span<T>>,
                  "overflow must be callable with std::span<T>");
    // relaxed: only this (the owner) thread writes m_tail.
    const std::uint32_t tail = m_tail.load(std::memory_order_relaxed);
    for (;;) {
      // acquire: pairs with the release CAS that ends a steal in steal_into(). The thief's
      // reads and destruction of the slots it freed happen-before we construct in them.
      const std::uint64_t head = m_head.load(std::memory_order_acquire);
      const auto [steal, real] = unpack(head);
      if (tail - steal < Capacity) break;  // room for one more
      if (steal != real) {
        // A thief is copying [steal, real). Its slots can't be touched, but it frees room soon.
        std::invoke(overflow, std::span<T>(&item, 1));
        return;
      }
      local_queue_check(tail - real == Capacity, "full queue with real != steal + Capacity");
      if (push_overflow(item, head, real, overflow)) return;
      // A thief claimed items first. Retry: we may have room once it finishes.
    }
    ::new (raw_slot(tail)) T(std::move(item));
    // release: pairs with the acquire load of m_tail in steal_into(). A thief that sees the
    // new tail also sees the item constructed in its slot.
    m_tail.store(tail + 1, std::memory_order_release);
  }

  /// Owner thread only. Takes the oldest item. Returns nullopt if the queue is empty.
  [[nodiscard]] std::optional<T> pop() noexcept {
    // relaxed: this is only a guess of the value. The CAS below validates it, and the slot we
    // read was written by this thread.
    std::uint64_t head = m_head.load(std::memory_order_relaxed);
    // relaxed: only this (the owner) thread writes m_tail.
    const std::uint32_t tail = m_tail.load(std::memory_order_relaxed);
    std::uint32_t real = 0;
    for (;;) {
      const Halves h = unpack(head);
      real = h.real;
      if (real == tail) return std::nullopt;
      // With no steal in progress, move both halves, so that steal == real still means idle.
      const std::uint32_t steal = h.steal == h.real ? real + 1 : h.steal;
      // release: pairs with the acquire loads of m_head in steal_into() and len(). A reader
      // that sees the new real also sees m_tail >= real. relaxed on failure: we only retry
      // with the value we read.
      if (m_head.compare_exchange_weak(head, pack(steal, real + 1), std::memory_order_release,
                                       std::memory_order_relaxed)) {
        break;
      }
    }
    T* item = slot(real);
    std::optional<T> out(std::move(*item));
    item->~T();
    return out;
  }

  /// Called by the owner of `dst` (not of `this`). Steals ceil(len/2) items from this victim
  /// queue and moves them into `dst`. It returns the newest stolen item directly and publishes
  /// the rest in `dst`. It returns nullopt without stealing if the victim is empty, if another
  /// thief is mid-steal on the victim, or if `dst` has fewer than Capacity/2 free slots.
  [[nodiscard]] std::optional<T> steal_into(LocalQueue& dst) noexcept {
    local_queue_check(&dst != this, "steal_into() with the victim as destination");
    // relaxed: the caller owns dst, so it is the only writer of dst.m_tail.
    const std::uint32_t dst_tail = dst.m_tail.load(std::memory_order_relaxed);
    // acquire: pairs with the release CAS that ends a steal from dst (in another thread's
    // steal_into()). Those reads of dst's slots happen-before we construct in them.
    const std::uint32_t dst_steal = unpack(dst.m_head.load(std::memory_order_acquire)).steal;
    if (Capacity - (dst_tail - dst_steal) < k_half) return std::nullopt;

    // acquire: pairs with the release CASes on m_head (pop, push_overflow, other thieves),
    // so the m_tail we load next is >= real.
    std::uint64_t head = m_head.load(std::memory_order_acquire);
    std::uint32_t first = 0;
    std::uint32_t n = 0;
    for (;;) {
      const auto [steal, real] = unpack(head);
      if (steal != real) return std::nullopt;  // another thief is mid-steal
      // acquire: pairs with the release store of m_tail in push_back() (or in steal_into()
      // when this queue was a destination). The items in [real, tail) are visible to us.
      const std::uint32_t tail = m_tail.load(std::memory_order_acquire);
      const std::uint32_t available = tail - real;
      n = available - available / 2;
      if (n == 0) return std::nullopt;
      // release: pairs with the acquire loads of m_head in len() and other thieves. A reader
      // that sees the advanced real also sees m_tail >= real. acquire on failure: same role as
      // the load above, for the retry.
      if (m_head.compare_exchange_weak(head, pack(steal, real + n), std::memory_order_release,
                                       std::memory_order_acquire)) {
        first = real;
        break;
      }
    }
    // The CAS succeeded on the head we loaded before m_tail, so tail - steal <= Capacity held.
    local_queue_check(n <= k_half, "steal claimed more than half the queue");

    // [first, first + n) is ours. The owner will not write these slots until steal moves.
    for (std::uint32_t i = 0; i + 1 < n; ++i) {
      T* src = slot(first + i);
      ::new (dst.raw_slot(dst_tail + i)) T(std::move(*src));
      src->~T();
    }
    T* last = slot(first + n - 1);
    std::optional<T> out(std::move(*last));
    last->~T();

    // Finish the steal: steal = real. The owner may have popped meanwhile (real moved on), so
    // retry with its value. Nobody else can move steal while it is ours.
    head = pack(first, first + n);
    for (;;) {
      const auto [steal, real] = unpack(head);
      local_queue_check(steal == first, "steal index moved during our steal");
      // release: pairs with the acquire load of m_head in push_back(). Our moves out of these
      // slots and our destruction of them happen-before the owner reuses them. relaxed on
      // failure: we only retry with the value we read.
      if (m_head.compare_exchange_weak(head, pack(real, real), std::memory_order_release,
                                       std::memory_order_relaxed)) {
        break;
      }
    }

    if (n > 1) {
      // release: pairs with the acquire load of m_tail in steal_into() by thieves of dst. They
      // see the items we just constructed.
      dst.m_tail.store(dst_tail + (n - 1), std::memory_order_release);
    }
    return out;
  }

  /// Any thread. The number of queued items. This is approximate while other threads run, and
  /// exact for the owner when no thief runs. Items a thief has claimed but not yet moved don't
  /// count.
  [[nodiscard]] std::uint32_t len() const noexcept {
    // acquire: pairs with the release CASes on m_head (pop, push_overflow, steal_into), so the
    // m_tail loaded next is >= real.
    const std::uint32_t real = unpack(m_head.load(std::memory_order_acquire)).real;
    // relaxed: only the count is used, no slot is read.
    const std::uint32_t tail = m_tail.load(std::memory_order_relaxed);
    const std::uint32_t n = tail - real;
    // The two loads are not one snapshot: pops and pushes between them can exceed Capacity.
    return n < Capacity ? n : Capacity;
  }

  /// Any thread. Approximate under concurrency, like len().
  [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

 private:
  static constexpr std::uint32_t k_mask = Capacity - 1;
  static constexpr std::uint32_t k_half = Capacity / 2;
  static constexpr unsigned k_steal_shift = 32;

  struct Halves {
    std::uint32_t steal;
    std::uint32_t real;
  };

  static constexpr std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << k_steal_shift) | std::uint64_t{real};
  }
  static constexpr Halves unpack(std::uint64_t head) noexcept {
    return Halves{static_cast<std::uint32_t>(head >> k_steal_shift),
                  static_cast<std::uint32_t>(head)};
  }

  struct Slot {
    alignas(T) std::byte bytes[sizeof(T)];
  };

  void* raw_slot(std::uint32_t pos) noexcept { return m_slots[pos & k_mask].bytes; }
  T* slot(std::uint32_t pos) noexcept {
    return std::launder(reinterpret_cast<T*>(m_slots[pos & k_mask].bytes));
  }

  // Owner thread only. Moves the k_half oldest items, and then `item`, to `overflow`. The queue
  // must be full and have no steal in progress. Returns false, leaving `item` untouched, if a
  // thief changed m_head first.
  template <class Overflow>
  bool push_overflow(T& item, std::uint64_t head, std::uint32_t real, Overflow& overflow) {
    // release: pairs with the acquire loads of m_head in steal_into() and len(). A reader that
    // sees the new real also sees m_tail >= real. relaxed on failure: the caller reloads m_head
    // with acquire.
    if (!m_head.compare_exchange_strong(head, pack(real + k_half, real + k_half),
                                        std::memory_order_release, std::memory_order_relaxed)) {
      return false;
    }
    // [real, real + k_half) is ours now. Only this thread wrote those slots, and no thief
    // will read them.
    alignas(T) std::byte storage[(k_half + 1) * sizeof(T)];
    for (std::uint32_t i = 0; i < k_half; ++i) {
      T* src = slot(real + i);
      ::new (static_cast<void*>(storage + i * sizeof(T))) T(std::move(*src));
      src->~T();
    }
    ::new (static_cast<void*>(storage + k_half * sizeof(T))) T(std::move(item));
    struct DestroyBatch {
      T* items;
      ~DestroyBatch() {
        for (std::uint32_t i = 0; i <= k_half; ++i)
          items[i].~T();
      }
    };
    const DestroyBatch batch{std::launder(reinterpret_cast<T*>(storage))};
    std::invoke(overflow, std::span<T>(batch.items, k_half + 1));
    return true;
  }

  // Separate cache lines: thieves CAS m_head, the owner stores m_tail, and slots churn.
  alignas(64) std::atomic<std::uint64_t> m_head;
  alignas(64) std::atomic<std::uint32_t> m_tail;
  alignas(64) Slot m_slots[Capacity];
};

}  // namespace weft::detail
