// The one-line runtime report of `weft-greeter --stats N` and SIGUSR1.
#pragma once

#include <chrono>
#include <string>

#include "greeter.hpp"
#include "weft.hpp"

namespace greeter {

/// One line: dialog and scheduler rates over the interval from `before` to `now`
/// (`elapsed` long), current queue depths, and the interval's p99 poll time and scheduling
/// delay (sampled; see weft/metrics.hpp).
[[nodiscard]] std::string stats_line(const weft::RuntimeMetrics& now,
                                     const weft::RuntimeMetrics& before,
                                     std::chrono::nanoseconds elapsed, std::uint64_t dialogs_now,
                                     std::uint64_t dialogs_before, std::uint64_t open_dialogs);

}  // namespace greeter
