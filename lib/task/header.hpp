// The header of a spawned task. It sits in front of the task's coroutine frame, in the same
// allocation (see allocate_frame), so a spawn costs one allocation.
//
// Ownership
// - `state` is shared by every thread; see state.hpp for what each bit gives its holder.
// - The frame, `promise` and `outcome_cancelled` belong to the holder of RUNNING until COMPLETE,
//   then to the JoinHandle if it still exists, else to nobody (the completer destroyed it).
// - `join_waker` belongs to the JoinHandle while JOIN_WAKER is clear, to the task side while
//   it is set; it is destroyed with the header.
// - `spawned_at` is written at spawn and only read afterwards.
// - `owned_prev`, `owned_next` are guarded by the owned-list shard's lock. `owned_linked` is
//   also written under that lock, but only ever by the holder of RUNNING (linking after the
//   first pending poll, unlinking at completion) or by shutdown when no worker runs, so that
//   holder may read it without the lock.
// - `core`, `magic`, `block_size`, `block_owner` and the header's memory live until the reference
// count reaches zero.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include "weft/source_location.hpp"

#include "task/state.hpp"
#include "weft/detail/promise.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

class Core;

struct TaskHeader {
  // Field order keeps the header within 80 bytes; see the static_assert below.
  static constexpr std::uint16_t k_magic = 0x7766;  // "wf"

  TaskState state;
  Core* core;  ///< null until spawned: the frame is then an ordinary, unspawned Task
  PromiseBase* promise;
  TaskHeader* owned_prev;
  TaskHeader* owned_next;
  Waker join_waker;           ///< empty (null vtable) until the JoinHandle stores one
  SourceLocation spawned_at;  ///< the spawn call, for stall reports
  std::uint32_t block_size;   ///< bytes allocated for header and frame together
  /// When the task was last scheduled, in 16 ns units of the metrics clock, if that wake was
  /// sampled for the histograms; else 0, and always 0 with metrics off. Written by the
  /// scheduler, read and cleared by the worker that polls the task next (the run queue orders
  /// the two), which times that poll.
  std::uint32_t woken_at;
  std::uint16_t magic;
  std::uint16_t block_owner;  ///< the frame cache to return the block to (frame_allocator.hpp)
  bool owned_linked;
  bool frame_destroyed;
  bool outcome_cancelled;

  [[nodiscard]] void* frame() noexcept;
  [[nodiscard]] std::coroutine_handle<> frame_handle() noexcept {
    return std::coroutine_handle<>::from_address(frame());
  }
};

static_assert(sizeof(TaskHeader) <= 80, "the frame prefix grew: check the field order");

/// Bytes reserved in front of every coroutine frame; a multiple of the default new alignment.
inline constexpr std::size_t k_frame_prefix =
    (sizeof(TaskHeader) + __STDCPP_DEFAULT_NEW_ALIGNMENT__ - 1) / __STDCPP_DEFAULT_NEW_ALIGNMENT__ *
    __STDCPP_DEFAULT_NEW_ALIGNMENT__;

inline void* TaskHeader::frame() noexcept {
  return reinterpret_cast<std::byte*>(this) + k_frame_prefix;
}

[[nodiscard]] inline TaskHeader* header_of(void* frame) noexcept {
  return reinterpret_cast<TaskHeader*>(static_cast<std::byte*>(frame) - k_frame_prefix);
}

/// The waker of a task: its data is the TaskHeader, and it holds one reference.
extern const WakerVTable k_task_waker_vtable;

class OwnerCounter;

enum class [[nodiscard]] RunOutcome{
    finished,  ///< completed or cancelled; the caller's reference is gone
    waiting,   ///< left waiting on a waker; the caller's reference is gone
    requeue,   ///< woken during its poll: the caller keeps the notified reference and must
               ///< schedule the task again, behind the tasks already queued (as a yield)
};

/// Runs one scheduled task on this thread: polls it, or cancels it when it was aborted. The
/// caller hands over the notified reference, and gets it back only with `requeue`. A task
/// that finishes is counted in `finished` (the worker's metrics counter, or null) before it
/// completes, so a joiner that sees it finished sees it counted.
RunOutcome run_task(TaskHeader* task, OwnerCounter* finished) noexcept;

/// Shutdown: cancels a task taken from the owned list (which no longer holds it), unless it
/// already finished.
void shutdown_task(TaskHeader* task) noexcept;

/// Shutdown: drops a task taken from a run queue with its notified reference, cancelling it
/// first unless it already finished. A task that never returned pending is in no owned list,
/// so this is where it is cancelled.
void discard_queued(TaskHeader* task) noexcept;

/// Drops a reference; frees the task when it was the last.
void release_task(TaskHeader* task, TaskState::Word count = 1) noexcept;

}  // namespace weft::detail
