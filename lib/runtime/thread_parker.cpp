// ThreadParker: lets an ordinary thread sleep until a Waker wakes it (join, block_on).
//
// Invariants
// - The shared Signal is reference-counted: the parker holds one reference and each waker
//   clone one, so a waker may outlive the parker (a task may keep it after the join returned).
// - The Signal's Parker is parked only by the thread that owns the ThreadParker.
#include <atomic>
#include <cstddef>

#include "sched/parker.hpp"
#include "weft/detail/raw_task.hpp"

namespace weft::detail {
namespace {

struct Signal {
  Parker parker;
  std::atomic<std::size_t> refs{1};
};

Signal* signal_of(const void* data) noexcept {
  return static_cast<Signal*>(const_cast<void*>(data));
}

void signal_release(Signal* signal) noexcept {
  // acq_rel: the last owner sees every other owner's use before freeing; pairs with itself.
  if (signal->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete signal;
}

const void* signal_clone(const void* data) noexcept {
  // relaxed: a reference made from a live one.
  signal_of(data)->refs.fetch_add(1, std::memory_order_relaxed);
  return data;
}

void signal_wake_by_ref(const void* data) noexcept {
  signal_of(data)->parker.unpark();
}

void signal_wake(const void* data) noexcept {
  signal_wake_by_ref(data);
  signal_release(signal_of(data));
}

void signal_drop(const void* data) noexcept {
  signal_release(signal_of(data));
}

constexpr WakerVTable k_signal_vtable{signal_clone, signal_wake, signal_wake_by_ref, signal_drop};

const void* noop_clone(const void* data) noexcept {
  return data;
}
void noop(const void*) noexcept {}
constexpr WakerVTable k_noop_vtable{noop_clone, noop, noop, noop};

}  // namespace

ThreadParker::ThreadParker() : m_waker(new Signal(), &k_signal_vtable) {}

ThreadParker::~ThreadParker() = default;

void ThreadParker::park() noexcept {
  signal_of(m_waker.data())->parker.park();
}

}  // namespace weft::detail

namespace weft {

Waker noop_waker() noexcept {
  return Waker(nullptr, &detail::k_noop_vtable);
}

}  // namespace weft
