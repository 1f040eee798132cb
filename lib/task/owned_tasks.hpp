// The spawned tasks that have returned pending at least once and have not finished, so that
// shutdown can cancel the ones no queue holds (tasks waiting on a waker). A task is linked
// after its first pending poll, not at spawn: one that finishes in its first poll never
// touches the list, and one that is still queued at shutdown is found by draining the queue.
//
// Invariants
// - Sharded by task address; each shard is an intrusive list guarded by its own spin lock
//   (held for a few instructions), so spawn and completion on different workers rarely
//   contend, and never sleep when they do.
// - The owned-list reference of TaskState is taken at spawn, whether or not the task is
//   linked yet, and dropped at completion.
// - close() runs once the workers have stopped, so no insert can come after it; insert()
//   reports one as a failure all the same.
// - Any thread may call every function.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

#include "weft/detail/spin_lock.hpp"

namespace weft::detail {

struct TaskHeader;

class OwnedTasks {
 public:
  explicit OwnedTasks(std::size_t workers);
  ~OwnedTasks();

  /// Links the task; false once closed.
  [[nodiscard]] bool insert(TaskHeader* task);
  /// Unlinks the task; false when it was not linked (taken by shutdown, or refused).
  [[nodiscard]] bool remove(TaskHeader* task);
  /// Refuses further inserts.
  void close();
  /// Unlinks and returns some task, or null when none is left.
  [[nodiscard]] TaskHeader* pop();

 private:
  struct alignas(64) Shard {
    SpinLock lock;
    TaskHeader* head = nullptr;
    bool closed = false;
  };
  Shard& shard_of(const TaskHeader* task) noexcept;

  std::size_t m_shard_count;  ///< a power of two, at least 4
  /// 64 minus log2 of the shard count: shard_of keeps the top bits of a hash.
  unsigned m_shift;
  std::unique_ptr<Shard[]> m_shards;
};

}  // namespace weft::detail
