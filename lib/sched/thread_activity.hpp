// How a thread spends its time, as the kernel accounts it, read by another thread: the stall
// detector's view of a worker stuck in one poll (running, asleep, or waiting for a core).
//
// Thread safety: current_thread_handle() describes the calling thread. The readers may be
// called from any thread, for any live thread of this process; for a thread that has exited
// they return nullopt. Each reader costs system calls (one for the CPU time, three for the
// state), so they are meant for rare events, not for every poll.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <optional>

namespace weft::detail {

/// A thread as the kernel names it. tid == 0 means "not known" (the default).
struct ThreadHandle {
  pid_t tid = 0;
  clockid_t cpu_clock = 0;
};

/// The calling thread's handle, or a default one if the kernel refuses its CPU clock.
[[nodiscard]] ThreadHandle current_thread_handle() noexcept;

/// The CPU time (user and system) the thread has used so far, its running slice included.
[[nodiscard]] std::optional<std::chrono::nanoseconds> thread_cpu_time(
    const ThreadHandle& thread) noexcept;

/// Whether the thread is asleep now (blocked: in a system call, on a lock, in a page fault),
/// as opposed to running or runnable. From its state in /proc/self/task/TID/stat.
[[nodiscard]] std::optional<bool> thread_is_asleep(const ThreadHandle& thread) noexcept;

}  // namespace weft::detail
