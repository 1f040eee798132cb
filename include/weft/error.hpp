// Errors that weft's core reports by exception.
//
// Convention: weft reports failures by throwing; a co_await rethrows what the awaited work
// threw. Misuse of the API (for instance joining a task from inside a worker) throws
// std::logic_error.
#pragma once

#include <stdexcept>

namespace weft {

/// Thrown when joining a task that was aborted or cancelled by runtime shutdown.
class TaskCancelled : public std::runtime_error {
 public:
  TaskCancelled() : std::runtime_error("weft: task was cancelled") {}
};

/// Thrown when receiving from a channel whose every sender is gone.
class ChannelClosed : public std::runtime_error {
 public:
  ChannelClosed() : std::runtime_error("weft: channel closed") {}
};

}  // namespace weft
