#include "task/owned_tasks.hpp"

#include <bit>
#include <cstdint>

#include "task/header.hpp"

namespace weft::detail {

OwnedTasks::OwnedTasks(std::size_t workers) {
  std::size_t shards = std::bit_ceil(workers * 4);
  m_shard_count = shards;
  m_shift = static_cast<unsigned>(64 - std::countr_zero(shards));  // shards >= 4
  m_shards = std::make_unique<Shard[]>(shards);
}

OwnedTasks::~OwnedTasks() = default;

OwnedTasks::Shard& OwnedTasks::shard_of(const TaskHeader* task) noexcept {
  // Fibonacci hashing: the top bits of the address times 2^64 / phi. Cached frames start on
  // 128-byte boundaries and the others on 16-byte ones, so the low bits say little; the
  // product's top bits depend on all of them, and neighbours spread over the shards.
  const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(task));
  return m_shards[(address * 0x9E37'79B9'7F4A'7C15ULL) >> m_shift];
}

bool OwnedTasks::insert(TaskHeader* task) {
  Shard& shard = shard_of(task);
  std::lock_guard guard(shard.lock);
  if (shard.closed) return false;
  task->owned_prev = nullptr;
  task->owned_next = shard.head;
  if (shard.head != nullptr) shard.head->owned_prev = task;
  shard.head = task;
  task->owned_linked = true;
  return true;
}

bool OwnedTasks::remove(TaskHeader* task) {
  Shard& shard = shard_of(task);
  std::lock_guard guard(shard.lock);
  if (!task->owned_linked) return false;
  if (task->owned_prev != nullptr) {
    task->owned_prev->owned_next = task->owned_next;
  } else {
    shard.head = task->owned_next;
  }
  if (task->owned_next != nullptr) task->owned_next->owned_prev = task->owned_prev;
  task->owned_linked = false;
  return true;
}

void OwnedTasks::close() {
  for (std::size_t i = 0; i < m_shard_count; ++i) {
    std::lock_guard guard(m_shards[i].lock);
    m_shards[i].closed = true;
  }
}

TaskHeader* OwnedTasks::pop() {
  for (std::size_t i = 0; i < m_shard_count; ++i) {
    Shard& shard = m_shards[i];
    std::lock_guard guard(shard.lock);
    TaskHeader* task = shard.head;
    if (task == nullptr) continue;
    shard.head = task->owned_next;
    if (shard.head != nullptr) shard.head->owned_prev = nullptr;
    task->owned_linked = false;
    return task;
  }
  return nullptr;
}

}  // namespace weft::detail
