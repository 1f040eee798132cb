// An intrusive FIFO list of waiters, each embedded in the future that waits, for the sync
// primitives (Semaphore, Notify).
//
// Node needs `Node* prev`, `Node* next` and `bool queued`. The list owns no node: a future
// unlinks its node before it is destroyed, and moves it with replace().
// Thread safety: none of its own; every call happens under the owning primitive's lock.
#pragma once

namespace weft::detail {

template <class Node>
class WaiterList {
 public:
  [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }
  [[nodiscard]] Node* front() const noexcept { return m_head; }

  void push_back(Node& node) noexcept {
    node.prev = m_tail;
    node.next = nullptr;
    node.queued = true;
    (m_tail != nullptr ? m_tail->next : m_head) = &node;
    m_tail = &node;
  }

  void unlink(Node& node) noexcept {
    (node.prev != nullptr ? node.prev->next : m_head) = node.next;
    (node.next != nullptr ? node.next->prev : m_tail) = node.prev;
    node.prev = node.next = nullptr;
    node.queued = false;
  }

  /// `to` takes `from`'s place in the list (when `from` is queued).
  void replace(Node& from, Node& to) noexcept {
    if (!from.queued) return;
    to.prev = from.prev;
    to.next = from.next;
    to.queued = true;
    (to.prev != nullptr ? to.prev->next : m_head) = &to;
    (to.next != nullptr ? to.next->prev : m_tail) = &to;
    from.prev = from.next = nullptr;
    from.queued = false;
  }

 private:
  Node* m_head = nullptr;
  Node* m_tail = nullptr;
};

}  // namespace weft::detail
