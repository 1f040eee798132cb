#include "weft/runtime.hpp"

#include "sched/core.hpp"

namespace weft {

Runtime::Runtime(RuntimeOptions options) : m_core(new detail::Core(std::move(options))) {
  m_core->start();
}

Runtime::~Runtime() {
  shutdown();
  m_core->release();
}

void Runtime::shutdown() {
  detail::check_may_block("weft::Runtime::shutdown");
  m_core->shutdown();
}

std::size_t Runtime::workers() const noexcept {
  return m_core->worker_count();
}

RuntimeMetrics Runtime::metrics() const {
  return m_core->metrics();
}

}  // namespace weft
