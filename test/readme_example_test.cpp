// The example from README.md, compiled and run so that the README cannot rot. Keep the two
// in step.
#include <doctest/doctest.h>

#include <weft.hpp>

namespace readme {

weft::Task<int> square(int x) {
  co_await weft::yield_now();  // let other tasks run
  co_return x* x;
}

weft::Task<int> sum_of_squares() {
  auto a = weft::spawn(square(3));  // runs in parallel, on any worker
  auto b = weft::spawn(square(4));
  co_return co_await a + co_await b;  // join: yields the value or rethrows
}

int main() {
  weft::Runtime runtime;  // one worker per core
  return runtime.block_on(sum_of_squares()) == 25 ? 0 : 1;
}

}  // namespace readme

TEST_SUITE("readme") {
  TEST_CASE("the README example computes 3*3 + 4*4 and exits 0") {
    CHECK(readme::main() == 0);
  }
}
