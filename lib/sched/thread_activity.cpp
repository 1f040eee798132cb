#include "sched/thread_activity.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace weft::detail {

ThreadHandle current_thread_handle() noexcept {
  clockid_t clock{};
  if (::pthread_getcpuclockid(::pthread_self(), &clock) != 0) return {};
  return ThreadHandle{::gettid(), clock};
}

std::optional<std::chrono::nanoseconds> thread_cpu_time(const ThreadHandle& thread) noexcept {
  if (thread.tid == 0) return std::nullopt;
  timespec now{};
  if (::clock_gettime(thread.cpu_clock, &now) != 0) return std::nullopt;
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

std::optional<bool> thread_is_asleep(const ThreadHandle& thread) noexcept {
  if (thread.tid == 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(thread.tid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // "TID (NAME) STATE ...": the name is at most 15 bytes but may itself hold ')', so the
  // state follows the last one.
  char text[256];
  const ssize_t length = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (length <= 0) return std::nullopt;
  text[length] = '\0';
  const char* name_end = std::strrchr(text, ')');
  if (name_end == nullptr || name_end[1] != ' ' || name_end[2] == '\0') return std::nullopt;
  // R is running or runnable; S, D (and I, for kernel threads) are the sleeps; T and t,
  // stopped by a signal or a debugger, are not running either.
  return name_end[2] != 'R';
}

}  // namespace weft::detail
