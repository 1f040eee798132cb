// Errors that weft's core reports by exception.
//
// Convention: weft reports failures by throwing; a co_await rethrows what the awaited work
// threw. Misuse of the API (for instance joining a task from inside a worker) throws
// std::logic_error. I/O failures throw std::system_error: code() is the errno value in
// std::system_category() (libuv's codes are mapped to it), and what() names the operation,
// for instance "weft: connect 127.0.0.1:1: Connection refused". Ends that are part of the
// normal course of a dialog are values, not errors: read() returns 0 at end of stream.
#pragma once

#include <stdexcept>

namespace weft {

/// Thrown when joining a task that was aborted or cancelled by runtime shutdown.
class TaskCancelled : public std::runtime_error {
 public:
  TaskCancelled() : std::runtime_error("weft: task was cancelled") {}
};

/// Thrown by weft::timeout when the deadline passes before the future is ready.
class TimedOut : public std::runtime_error {
 public:
  TimedOut() : std::runtime_error("weft: timed out") {}
};

/// Thrown when receiving from a oneshot channel whose sender is gone, or when sending on a
/// channel whose receiver is gone.
class ChannelClosed : public std::runtime_error {
 public:
  ChannelClosed() : std::runtime_error("weft: channel closed") {}
};

/// Thrown by Semaphore::acquire once the semaphore has been closed.
class SemaphoreClosed : public std::runtime_error {
 public:
  SemaphoreClosed() : std::runtime_error("weft: semaphore closed") {}
};

}  // namespace weft
