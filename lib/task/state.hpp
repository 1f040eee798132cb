// The state word of a spawned task: its lifecycle bits and its reference count, in one atomic.
//
// Invariants
// - RUNNING: one thread is polling the task, or cancelling it. Only the holder of RUNNING
//   touches the coroutine frame, until COMPLETE is set.
// - COMPLETE: the frame has run to its end or been cancelled; set once, never cleared. From
//   then on the JoinHandle (if JOIN_INTEREST) owns the result, else nobody does and the poller
//   that completed the task has destroyed it.
// - NOTIFIED: the task is scheduled, or will be: exactly one reference (the "notified"
//   reference) stands for the pending run. It is set by the wake that finds the task idle (the
//   waker then submits it to a queue) or by a wake while RUNNING (the poller then requeues it
//   when the poll ends). Many wakes before the run coalesce into this one bit.
// - CANCELLED: abort() or shutdown asked for cancellation. The next run destroys the frame
//   instead of polling it.
// - JOIN_INTEREST: the JoinHandle exists. Cleared only by the handle, and only while the task
//   is not COMPLETE.
// - JOIN_WAKER: the header's join waker is set and belongs to the task side: the poller reads
//   it at completion. While it is clear the handle owns the slot and may write it.
// - The reference count (bits 6 and up) counts: the owned-task list (taken at spawn, though
//   the task is linked only after its first pending poll), the JoinHandle, the
//   notified reference, and each Waker. The memory is freed when it reaches zero.
//
// Every transition is one read-modify-write that returns what the caller must do next.
//
// Sole ownership. A thread can only reach the word through a reference, so when the word
// shows that the caller's references are all there are, nobody else can read or change it
// until the caller makes a new one (a waker clone, which only the poller can do). The poller,
// the completer and the JoinHandle then skip the read-modify-write and use a load and a store:
// a detached task that spawns, yields or finishes without handing out a waker (the common
// fire-and-forget case) pays no locked instruction on its state. The load is an acquire: it
// pairs with the release of the read-modify-write that dropped the last other reference, so
// that owner's writes happen before the caller's. The store may be relaxed where the word is
// next read by this thread or through a queue hand-off, whose release/acquire orders it.
// The owned list's reference counts as present from spawn to completion, but no thread
// touches the word through it while workers run (shutdown uses it only after joining them).
// The waker lent to a poll holds no reference either: code that hands `cx.waker()` by
// reference to another thread must be done with it before the poll returns (the Context
// contract), so by the time the poller looks at the word every such use happened before.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

class TaskState {
 public:
  using Word = std::uint64_t;

  /// Being polled or cancelled by one thread.
  static constexpr Word k_running = 1u << 0;
  /// Finished (normally or by cancellation); final.
  static constexpr Word k_complete = 1u << 1;
  /// A run is pending; one reference stands for it.
  static constexpr Word k_notified = 1u << 2;
  /// Cancellation requested; the next run destroys the frame instead of polling it.
  static constexpr Word k_cancelled = 1u << 3;
  /// The JoinHandle is alive.
  static constexpr Word k_join_interest = 1u << 4;
  /// The join waker slot is set and owned by the task side.
  static constexpr Word k_join_waker = 1u << 5;
  static constexpr Word k_ref_one = 1u << 6;
  static constexpr Word k_lifecycle_mask = k_ref_one - 1;

  /// A new task: referenced by the owned list, the JoinHandle and its first scheduling.
  static constexpr Word k_initial = 3 * k_ref_one | k_join_interest | k_notified;

  enum class [[nodiscard]] RunAction{
      poll,    ///< poll the frame
      cancel,  ///< destroy the frame and complete as cancelled
  };
  enum class [[nodiscard]] IdleAction{
      idle,     ///< parked until a wake; the notified reference was dropped
      requeue,  ///< woken while running: schedule again, keeping the notified reference
  };
  enum class [[nodiscard]] WakeAction{
      nothing,     ///< nothing more to do
      submit,      ///< the caller now holds the notified reference and must schedule the task
      deallocate,  ///< the caller dropped the last reference and must free the task
  };

  TaskState() noexcept : m_word(k_initial) {}

  [[nodiscard]] Word load(std::memory_order order) const noexcept { return m_word.load(order); }

  /// The references counted in `word`.
  [[nodiscard]] static constexpr Word refs_of(Word word) noexcept { return word >> 6; }
  /// References of a task that only its poller can reach: the owned list's and the notified
  /// one (no JoinHandle, no waker).
  static constexpr Word k_poller_alone_refs = 2;

  /// Poller, holding the notified reference: NOTIFIED -> RUNNING.
  RunAction transition_to_running() noexcept {
    // acquire: pairs with the release in the wake or spawn that scheduled the task, so the
    // frame written by the previous poller is visible here (the queue hand-off orders it too).
    Word prev = m_word.load(std::memory_order_acquire);
    if (refs_of(prev) == k_poller_alone_refs) {
      // Sole owner (see the top of this file). relaxed: read next by this thread only.
      m_word.store(prev ^ (k_notified | k_running), std::memory_order_relaxed);
    } else {
      // acquire: as above.
      prev = m_word.fetch_xor(k_notified | k_running, std::memory_order_acquire);
    }
    return (prev & k_cancelled) != 0 ? RunAction::cancel : RunAction::poll;
  }

  /// Poller, after a pending poll: RUNNING -> idle, or requeue if woken during the poll.
  /// `woken_by_self` says the poll woke its own task on the poller's thread (yield_now, the
  /// cooperative budget), which the waker recorded there instead of setting NOTIFIED.
  IdleAction transition_to_idle(bool woken_by_self) noexcept {
    // acquire: pairs with the release of a wake during the poll, and of the drop of the last
    // other reference when the fast path below is taken.
    Word prev = m_word.load(std::memory_order_acquire);
    for (;;) {
      Word next = prev & ~k_running;
      IdleAction action = IdleAction::requeue;
      if (woken_by_self) {
        next |= k_notified;  // the poller's reference becomes the notified reference
      } else if ((prev & k_notified) == 0) {
        next -= k_ref_one;  // the owned list still holds a reference, so this is not the last
        action = IdleAction::idle;
      }
      if (refs_of(prev) == k_poller_alone_refs) {
        // Sole owner. release: publishes the frame to the next poller, who reaches the task
        // through a queue (pairs with its acquire load in transition_to_running).
        m_word.store(next, std::memory_order_release);
        return action;
      }
      // acq_rel: release publishes the frame to the next poller (pairs with the acquire in
      // transition_to_running); acquire pairs with the release of a wake during the poll.
      if (m_word.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return action;
      }
    }
  }

  /// Poller, when the frame finished or was cancelled: RUNNING -> COMPLETE. Returns the
  /// state before, whose JOIN_INTEREST and JOIN_WAKER say who takes the result.
  Word transition_to_complete() noexcept {
    // acq_rel: release publishes the result to the JoinHandle (pairs with the acquire in
    // join_poll); acquire pairs with the release of set_join_waker, so the waker is visible.
    return m_word.fetch_xor(k_running | k_complete, std::memory_order_acq_rel);
  }

  /// Poller, when the frame of a detached task (no JOIN_INTEREST, which never comes back) has
  /// been destroyed: RUNNING -> COMPLETE and drop `count` references, in one step. Returns
  /// true when they were the last.
  [[nodiscard]] bool complete_detached(Word count) noexcept {
    // acquire: pairs with the release of whoever dropped the last other reference.
    if (refs_of(m_word.load(std::memory_order_acquire)) == count) {
      return true;  // sole owner: the caller frees the task, so nothing needs writing
    }
    // acq_rel: as transition_to_complete plus ref_dec; the wrapping sum sets COMPLETE, clears
    // RUNNING (known set) and subtracts the references.
    Word prev =
        m_word.fetch_add(k_complete - k_running - count * k_ref_one, std::memory_order_acq_rel);
    return (prev >> 6) == count;
  }

  /// A waker that gives up its reference.
  WakeAction wake_by_val() noexcept {
    // relaxed: only a first guess; the CAS below validates it and orders the transition.
    Word prev = m_word.load(std::memory_order_relaxed);
    for (;;) {
      Word next;
      WakeAction action;
      if ((prev & k_running) != 0) {
        next = (prev | k_notified) - k_ref_one;  // the poller requeues with its own reference
        action = WakeAction::nothing;
      } else if ((prev & (k_complete | k_notified)) != 0) {
        next = prev - k_ref_one;
        action = next < k_ref_one ? WakeAction::deallocate : WakeAction::nothing;
      } else {
        next = prev | k_notified;  // this waker's reference becomes the notified reference
        action = WakeAction::submit;
      }
      // acq_rel: release publishes what the waker did before waking to the next poll (pairs
      // with the acquire in transition_to_running or transition_to_idle); acquire makes a
      // deallocating waker see every other owner's writes.
      if (m_word.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        return action;
      }
    }
  }

  /// A waker that keeps its reference. Never deallocates.
  WakeAction wake_by_ref() noexcept {
    // relaxed: only a first guess; the CAS below validates it and orders the transition.
    Word prev = m_word.load(std::memory_order_relaxed);
    for (;;) {
      Word next;
      WakeAction action = WakeAction::nothing;
      if ((prev & k_running) != 0) {
        if ((prev & k_notified) != 0) return WakeAction::nothing;
        next = prev | k_notified;
      } else if ((prev & (k_complete | k_notified)) != 0) {
        return WakeAction::nothing;
      } else {
        next = (prev | k_notified) + k_ref_one;
        action = WakeAction::submit;
      }
      // acq_rel: as in wake_by_val.
      if (m_word.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        return action;
      }
    }
  }

  /// abort(): request cancellation and make sure a run will see it.
  WakeAction transition_to_cancelled() noexcept {
    // relaxed: only a first guess; the CAS below validates it and orders the transition.
    Word prev = m_word.load(std::memory_order_relaxed);
    for (;;) {
      if ((prev & (k_complete | k_cancelled)) != 0) return WakeAction::nothing;
      Word next = prev | k_cancelled;
      WakeAction action = WakeAction::nothing;
      if ((prev & (k_running | k_notified)) == 0) {
        next = (next | k_notified) + k_ref_one;
        action = WakeAction::submit;
      } else if ((prev & k_running) != 0) {
        next |= k_notified;  // the poller requeues it, and the next run cancels
      }
      // acq_rel: as in wake_by_val.
      if (m_word.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        return action;
      }
    }
  }

  /// Runtime shutdown, with no worker running: claims an unfinished task so the caller can
  /// cancel it. Returns false when the task is already complete (or, impossibly, running).
  bool transition_to_shutdown() noexcept {
    // relaxed: only a first guess; the CAS below validates it and orders the transition.
    Word prev = m_word.load(std::memory_order_relaxed);
    for (;;) {
      if ((prev & (k_complete | k_running)) != 0) return false;
      // acq_rel: acquire the last poller's frame writes (pairs with transition_to_idle).
      if (m_word.compare_exchange_weak(prev, prev | k_running | k_cancelled,
                                       std::memory_order_acq_rel, std::memory_order_relaxed)) {
        return true;
      }
    }
  }

  /// JoinHandle: the task has finished (acquire: pairs with transition_to_complete).
  [[nodiscard]] bool is_complete() const noexcept {
    // acquire: pairs with the release in transition_to_complete.
    return (m_word.load(std::memory_order_acquire) & k_complete) != 0;
  }

  /// JoinHandle, after writing the join waker: hand the slot to the task side. Fails (returns
  /// false) when the task completed first; the handle then reads the result.
  bool set_join_waker() noexcept {
    // acquire: a handle that finds COMPLETE reads the result next (pairs with the release in
    // transition_to_complete).
    Word prev = m_word.load(std::memory_order_acquire);
    for (;;) {
      if ((prev & k_complete) != 0) return false;
      // release: publishes the waker to the completing poller (pairs with the acquire in
      // transition_to_complete). acquire on failure: pairs with its release of the result.
      if (m_word.compare_exchange_weak(prev, prev | k_join_waker, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
  }

  /// JoinHandle: take the join waker slot back to replace it. Fails when the task completed.
  bool unset_join_waker() noexcept {
    // acquire: a handle that finds COMPLETE reads the result next (pairs with the release in
    // transition_to_complete).
    Word prev = m_word.load(std::memory_order_acquire);
    for (;;) {
      if ((prev & k_complete) != 0) return false;
      // acquire: pairs with the release in set_join_waker (our own earlier write).
      if (m_word.compare_exchange_weak(prev, prev & ~k_join_waker, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
  }

  /// JoinHandle destruction. Returns true when the task had completed: the handle owns the
  /// result, must destroy it, and still holds its reference. Otherwise the task is detached
  /// and the handle's reference is dropped in the same step (never the last one: the owned
  /// list holds one until completion).
  /// `in_private_slot`: the task waits in the caller's LIFO slot, which no other thread can
  /// take it from. If the word also shows only the spawn's references (the owned list's, the
  /// handle's and the notified one: no waker exists), nobody else can reach the task, and
  /// the step is a load and a store.
  bool drop_join_interest(bool in_private_slot = false) noexcept {
    // acquire (here and on failure): pairs with the release in transition_to_complete, so a
    // handle that finds the task complete sees its result.
    Word prev = m_word.load(std::memory_order_acquire);
    for (;;) {
      if ((prev & k_complete) != 0) return true;
      if (in_private_slot && refs_of(prev) == refs_of(k_initial)) {
        // relaxed: the task is next reached through a queue hand-off, which orders this.
        m_word.store((prev & ~(k_join_interest | k_join_waker)) - k_ref_one,
                     std::memory_order_relaxed);
        return false;
      }
      // release on success: the handle's last writes (the join waker) happen before whoever
      // frees the task; pairs with the acq_rel of the final ref_dec.
      if (m_word.compare_exchange_weak(prev, (prev & ~(k_join_interest | k_join_waker)) - k_ref_one,
                                       std::memory_order_release, std::memory_order_acquire)) {
        return false;
      }
    }
  }

  void ref_inc() noexcept {
    // relaxed: a new reference is made from an existing one, which keeps the task alive.
    m_word.fetch_add(k_ref_one, std::memory_order_relaxed);
  }

  /// Returns true when this dropped the last reference.
  [[nodiscard]] bool ref_dec(Word count = 1) noexcept {
    // acq_rel: release publishes this owner's writes; acquire (for the last owner) sees
    // everyone's before freeing. Pairs with itself.
    Word prev = m_word.fetch_sub(count * k_ref_one, std::memory_order_acq_rel);
    return (prev >> 6) == count;
  }

 private:
  std::atomic<Word> m_word;
};

}  // namespace weft::detail
