// The greeter's log: lines for stdout and stderr, written by a thread of their own.
//
// Why: a worker that printf()s blocks when nobody reads the output (a stalled log shipper, a
// pipe into `less`, a terminal stopped with Ctrl-S). Once the pipe's 64 KiB filled, every
// worker sat in write(2): no client got a prompt, and SIGTERM went unanswered. Here a worker
// only appends the line to a queue. The queue holds at most k_max_queued_bytes; past that a
// line is dropped and counted, and the count is logged once the output moves again. An
// output whose reader has gone (EPIPE) is dropped silently from then on; SIGPIPE is ignored
// by main().
//
// Thread safety: every function may be called from any thread. Lines keep their order,
// across both streams. The writer waits for an output to be writable (poll, 100 ms at a
// time) and writes at most PIPE_BUF bytes at once, so it never blocks for long in write(2)
// on a pipe, and flush_log can always stop it by its deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace greeter {

/// The most text the queue holds before it drops lines: a second or so of "connection from"
/// lines at full speed.
inline constexpr std::size_t k_max_queued_bytes = 1 << 20;

/// Queues `line` (a newline is added) for stdout.
void log_out(std::string line);
/// Queues `line` (a newline is added) for stderr.
void log_err(std::string line);

/// Waits, at most `limit`, for the queued lines to be written, then ends the writer thread
/// (a later line starts it again). For the end of main(), and before a fork(), which wants a
/// single-threaded parent.
void flush_log(std::chrono::milliseconds limit);

/// Lines dropped so far because the queue was full.
[[nodiscard]] std::size_t log_lines_dropped();

/// printf into a string of whatever length the text needs.
template <class... Args>
std::string format(const char* pattern, Args... args) {
  const int size = std::snprintf(nullptr, 0, pattern, args...);
  if (size <= 0) return {};
  std::string text(static_cast<std::size_t>(size) + 1, '\0');
  std::snprintf(text.data(), text.size(), pattern, args...);
  text.resize(static_cast<std::size_t>(size));
  return text;
}

}  // namespace greeter
