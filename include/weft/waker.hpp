// weft::Waker and weft::Context: how a future asks to be polled again.
//
// A Waker is a type-erased, reference-counted handle to "whatever must be polled again", most
// often a task. It is a pair (data, vtable) in the manner of Rust's RawWaker, so that code
// outside weft (a test, another event loop) can make its own.
//
// Thread safety: a Waker may be copied, moved, woken and destroyed from any thread, at any
// time, including after the thing it wakes has finished; the vtable functions must allow that.
#pragma once

namespace weft {

struct WakerVTable {
  /// Returns data for a new reference (often the same pointer, with a reference count raised).
  const void* (*clone)(const void* data) noexcept;
  /// Wakes and releases this reference.
  void (*wake)(const void* data) noexcept;
  /// Wakes, keeping this reference.
  void (*wake_by_ref)(const void* data) noexcept;
  /// Releases this reference without waking.
  void (*drop)(const void* data) noexcept;
};

class Waker {
 public:
  /// Adopts one reference to `data`; `vtable` must outlive every copy.
  constexpr Waker(const void* data, const WakerVTable* vtable) noexcept
      : m_data(data), m_vtable(vtable) {}

  Waker(const Waker& other) noexcept
      : m_data(other.m_vtable->clone(other.m_data)), m_vtable(other.m_vtable) {}
  Waker(Waker&& other) noexcept : m_data(other.m_data), m_vtable(other.m_vtable) {
    other.m_vtable = nullptr;
  }
  Waker& operator=(Waker other) noexcept {
    swap(other);
    return *this;
  }
  ~Waker() {
    if (m_vtable != nullptr) m_vtable->drop(m_data);
  }

  /// Wakes the target and gives up this reference.
  void wake() && noexcept {
    const WakerVTable* vtable = m_vtable;
    m_vtable = nullptr;
    vtable->wake(m_data);
  }
  void wake_by_ref() const noexcept { m_vtable->wake_by_ref(m_data); }

  /// True when both wake the same target, so that a stored waker need not be replaced.
  [[nodiscard]] bool will_wake(const Waker& other) const noexcept {
    return m_data == other.m_data && m_vtable == other.m_vtable;
  }

  void swap(Waker& other) noexcept {
    const void* data = m_data;
    const WakerVTable* vtable = m_vtable;
    m_data = other.m_data;
    m_vtable = other.m_vtable;
    other.m_data = data;
    other.m_vtable = vtable;
  }

  [[nodiscard]] const void* data() const noexcept { return m_data; }
  [[nodiscard]] const WakerVTable* vtable() const noexcept { return m_vtable; }

 private:
  const void* m_data;
  const WakerVTable* m_vtable;
};

/// A waker that does nothing; for polling a future by hand in tests.
[[nodiscard]] Waker noop_waker() noexcept;

/// What a future is polled with. It lends the waker of the task doing the polling.
class Context {
 public:
  explicit Context(const Waker& waker) noexcept : m_waker(&waker) {}
  [[nodiscard]] const Waker& waker() const noexcept { return *m_waker; }

 private:
  const Waker* m_waker;
};

}  // namespace weft
