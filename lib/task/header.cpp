// Spawned tasks: frame allocation, the task waker, running, completing, joining, aborting.
// The protocol of the state word is in state.hpp; ownership of each field in header.hpp.
#include "task/header.hpp"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "sched/core.hpp"
#include "sched/worker.hpp"
#include "task/frame_allocator.hpp"
#include "weft/detail/raw_task.hpp"
#include "weft/detail/tls_model.hpp"

namespace weft::detail {
namespace {

void die(const char* message) noexcept {
  std::fprintf(stderr, "weft: fatal: %s\n", message);
  std::abort();
}

/// The task this thread is polling, and whether that poll woke it (see waker_wake_by_ref).
WEFT_TLS thread_local TaskHeader* t_polling = nullptr;
WEFT_TLS thread_local bool t_woken_by_self = false;

/// A Waker over a task that holds no reference: the scheduler's own, lent to one poll.
union BorrowedWaker {
  explicit BorrowedWaker(TaskHeader* task) noexcept : waker(task, &k_task_waker_vtable) {}
  ~BorrowedWaker() {}  // never drops: the poll borrowed the reference
  Waker waker;
};

void deallocate(TaskHeader* task) noexcept {
  if (!task->frame_destroyed) task->frame_handle().destroy();  // a frame nobody could finish
  Core* core = task->core;
  const std::uint32_t block_size = task->block_size;
  const std::uint16_t block_owner = task->block_owner;
  task->~TaskHeader();
  deallocate_block(task, block_size, block_owner);
  core->release_for_task();
}

void report_if_unobserved(TaskHeader* task) noexcept {
  if (task->outcome_cancelled) return;
  if (const std::exception_ptr& error = task->promise->exception()) {
    task->core->report_exception(error);
  }
}

void destroy_frame(TaskHeader* task) noexcept {
  task->frame_handle().destroy();
}

/// Destroys a finished task's result (its frame), reporting an exception nobody took. For
/// whoever owns the result: the completer of a detached task, or the join handle.
void drop_result(TaskHeader* task) noexcept {
  if (task->frame_destroyed) return;  // cancelled: the frame went at cancellation
  report_if_unobserved(task);
  destroy_frame(task);
}

/// Completes a task whose frame finished (or was cancelled and destroyed) under RUNNING. Drops
/// the owned-list reference (unlinking the task if it was linked) and `extra_refs` more.
/// `finished` is the metrics counter to count it in (the poller's own, or null); it is counted
/// before COMPLETE, so that a joiner that sees the task finished sees it counted too.
void complete(TaskHeader* task, bool cancelled, TaskState::Word extra_refs,
              OwnerCounter* finished) noexcept {
  task->outcome_cancelled = cancelled;
  if (finished != nullptr) finished->add();
  // Unlink before COMPLETE: after it the join handle may free the task. owned_linked is only
  // written by the holder of RUNNING (or by shutdown, when no worker runs), so this read is
  // safe without the shard lock.
  if (task->owned_linked) (void)task->core->owned().remove(task);
  // acquire: pairs with the release of drop_join_interest. Once clear, JOIN_INTEREST stays
  // clear, so a detached task can drop its result first and then complete in one step.
  if ((task->state.load(std::memory_order_acquire) & TaskState::k_join_interest) == 0) {
    drop_result(task);
    if (task->state.complete_detached(extra_refs + 1)) deallocate(task);
    return;
  }
  TaskState::Word before = task->state.transition_to_complete();
  if ((before & TaskState::k_join_interest) == 0) {
    // Detached: nobody will take the result, so it goes now.
    drop_result(task);
  } else if ((before & TaskState::k_join_waker) != 0) {
    task->join_waker.wake_by_ref();
  }
  release_task(task, extra_refs + 1);
}

/// Cancels a task off the poll path (shutdown, or a spawn that met it), whose caller holds
/// RUNNING or SHUTDOWN: destroys the frame, counts the task finished and completes it.
void cancel_off_worker_poll(TaskHeader* task, TaskState::Word extra_refs) noexcept {
  destroy_frame(task);
  task->core->note_finished();
  complete(task, true, extra_refs, nullptr);
}

void schedule(TaskHeader* task, bool is_yield) noexcept {
  task->core->schedule(task, is_yield);
}

const void* waker_clone(const void* data) noexcept {
  static_cast<TaskHeader*>(const_cast<void*>(data))->state.ref_inc();
  return data;
}

void waker_wake(const void* data) noexcept {
  auto* task = static_cast<TaskHeader*>(const_cast<void*>(data));
  switch (task->state.wake_by_val()) {
    case TaskState::WakeAction::submit:
      schedule(task, false);
      break;
    case TaskState::WakeAction::deallocate:
      deallocate(task);
      break;
    case TaskState::WakeAction::nothing:
      break;
  }
}

void waker_wake_by_ref(const void* data) noexcept {
  auto* task = static_cast<TaskHeader*>(const_cast<void*>(data));
  if (task == t_polling) {
    // A poll that wakes its own task (yield_now, the cooperative budget) on the poller's
    // thread: the poller requeues it when the poll returns (transition_to_idle), so the word
    // is left alone. The flag is this thread's, so no other thread races with it.
    t_woken_by_self = true;
    return;
  }
  if (task->state.wake_by_ref() == TaskState::WakeAction::submit) schedule(task, false);
}

void waker_drop(const void* data) noexcept {
  release_task(static_cast<TaskHeader*>(const_cast<void*>(data)));
}

}  // namespace

const WakerVTable k_task_waker_vtable{waker_clone, waker_wake, waker_wake_by_ref, waker_drop};

void* allocate_frame(std::size_t size) {
  FrameBlock block = allocate_block(k_frame_prefix + size);
  auto* task = static_cast<TaskHeader*>(block.memory);
  task->core = nullptr;
  task->block_size = static_cast<std::uint32_t>(k_frame_prefix + size);
  task->block_owner = block.owner;
  task->magic = TaskHeader::k_magic;
  return task->frame();
}

void deallocate_frame(void* frame, std::size_t) noexcept {
  TaskHeader* task = header_of(frame);
  if (task->core != nullptr) {
    task->frame_destroyed = true;  // the header lives on until its last reference
    return;
  }
  deallocate_block(task, task->block_size, task->block_owner);
}

void release_task(TaskHeader* task, TaskState::Word count) noexcept {
  if (task->state.ref_dec(count)) deallocate(task);
}

RunOutcome run_task(TaskHeader* task, OwnerCounter* finished) noexcept {
  if (task->state.transition_to_running() == TaskState::RunAction::cancel) {
    destroy_frame(task);
    complete(task, true, 1, finished);
    return RunOutcome::finished;
  }
  bool done;
  TaskHeader* const outer = std::exchange(t_polling, task);  // a poll never nests; be safe
  {
    BorrowedWaker waker(task);
    Context cx(waker.waker);
    done = task->promise->own_root().poll(cx);
  }
  t_polling = outer;
  const bool woken_by_self = std::exchange(t_woken_by_self, false);
  if (done) {
    complete(task, false, 1, finished);
    return RunOutcome::finished;
  }
  // The task will wait on a waker, where no queue can find it: link it now (still under
  // RUNNING), so that shutdown can cancel it. Tasks that finish in their first poll never
  // pay for the list.
  if (!task->owned_linked && !task->core->owned().insert(task)) {
    die("a worker polled a task after the owned-task list closed");
  }
  return task->state.transition_to_idle(woken_by_self) == TaskState::IdleAction::requeue
             ? RunOutcome::requeue
             : RunOutcome::waiting;
}

void shutdown_task(TaskHeader* task) noexcept {
  if (task->state.transition_to_shutdown()) {
    cancel_off_worker_poll(task, 0);  // the owned list's reference; pop() unlinked the task
  } else {
    release_task(task);  // the owned list's reference
  }
}

void discard_queued(TaskHeader* task) noexcept {
  if (task->state.transition_to_shutdown()) {
    cancel_off_worker_poll(task, 1);  // the notified reference too
  } else {
    release_task(task);  // already finished: only the notified reference is left
  }
}

// ---- spawning --------------------------------------------------------------------------

TaskHeader* spawn_raw(Core* core, std::coroutine_handle<> frame, PromiseBase& promise,
                      SourceLocation spawned_at) {
  if (!frame) throw std::invalid_argument("weft::spawn: the task is empty (moved from)");
  if (promise.is_started()) {
    frame.destroy();  // the task was handed over by value: it goes either way
    throw std::invalid_argument("weft::spawn: the task was already polled; spawn a fresh one");
  }
  if (core == nullptr) core = current_core();
  if (core == nullptr) {
    frame.destroy();
    throw std::logic_error(
        "weft::spawn called outside a runtime's worker; use Runtime::spawn from this thread");
  }
  TaskHeader* task = header_of(frame.address());
  if (task->magic != TaskHeader::k_magic || task->core != nullptr) {
    die("spawn: the coroutine frame is not where weft allocated it (unsupported compiler?)");
  }
  new (&task->state) TaskState();
  new (&task->join_waker) Waker(nullptr, nullptr);
  task->spawned_at = spawned_at;
  task->woken_at = 0;
  task->core = core;
  task->promise = &promise;
  task->owned_prev = task->owned_next = nullptr;
  task->owned_linked = false;
  task->frame_destroyed = false;
  task->outcome_cancelled = false;
  promise.start_as_root(frame);
  core->retain_for_spawn();

  if (core->is_shutdown()) {
    // The runtime is shutting down: the task is cancelled before it starts. This thread holds
    // the notified reference, so it may take RUNNING.
    (void)task->state.transition_to_running();
    cancel_off_worker_poll(task, 1);  // the notified reference, and the owned list's
    return task;
  }
  core->schedule(task, false);
  return task;
}

void check_may_block(const char* what) {
  if (current_worker() != nullptr) {
    throw std::logic_error(std::string(what) + " would block a runtime worker; co_await instead");
  }
}

// ---- join handles ------------------------------------------------------------------------

JoinStatus join_poll(TaskHeader* task, Context& cx) {
  TaskState& state = task->state;
  auto finished = [task] {
    return task->outcome_cancelled ? JoinStatus::cancelled : JoinStatus::ready;
  };
  if (state.is_complete()) return finished();
  // relaxed: JOIN_WAKER is only changed by this handle (and COMPLETE is rechecked by the CAS
  // in unset_join_waker / set_join_waker).
  TaskState::Word word = state.load(std::memory_order_relaxed);
  if ((word & TaskState::k_join_waker) != 0) {
    if (task->join_waker.will_wake(cx.waker())) return JoinStatus::pending;
    if (!state.unset_join_waker()) return finished();
  }
  task->join_waker = cx.waker();
  if (!state.set_join_waker()) return finished();
  return JoinStatus::pending;
}

PromiseBase& promise_of(TaskHeader* task) noexcept {
  return *task->promise;
}

void join_drop(TaskHeader* task) noexcept {
  // A handle dropped right after its spawn on a worker finds the task in that worker's LIFO
  // slot, where no thief can take it (see drop_join_interest).
  const Worker* worker = current_worker();
  const bool in_private_slot = worker != nullptr && worker->holds_in_lifo(task);
  if (!task->state.drop_join_interest(in_private_slot)) return;  // detached; ref went with it
  drop_result(task);
  release_task(task);
}

void abort_task(TaskHeader* task) noexcept {
  if (task->state.transition_to_cancelled() == TaskState::WakeAction::submit) {
    schedule(task, false);
  }
}

bool is_finished(const TaskHeader* task) noexcept {
  return task->state.is_complete();
}

}  // namespace weft::detail
