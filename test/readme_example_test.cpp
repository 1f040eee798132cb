// The examples from README.md, compiled and run so that the README cannot rot: the build
// extracts every ```cpp block of README.md into readme_examples.inc (test/readme_examples.py).
#include <doctest/doctest.h>

#include <weft.hpp>

// GCC warns of lambdas in coroutine frames when they come from an included file, as the
// README's do here; in the README itself they would be in the main file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
namespace readme {
#include "readme_examples.inc"
}  // namespace readme
#pragma GCC diagnostic pop

namespace {

weft::Task<std::string> dial(weft::SocketAddress server) {
  auto stream = co_await weft::TcpStream::connect(server);
  (void)co_await stream.read_until('\n', 64);
  co_await stream.write_all("Ferris\n");
  co_return (co_await stream.read_until('\n', 64)).bytes;
}

}  // namespace

TEST_SUITE("readme") {
  TEST_CASE("the README example computes 3*3 + 4*4 and exits 0") {
    CHECK(readme::main() == 0);
  }

  TEST_CASE("the README's channel example sums the names' lengths") {
    weft::Runtime runtime(weft::RuntimeOptions{.workers = 2});
    CHECK(runtime.block_on(readme::total_length()) == 6 + 6 + 4);
  }

  TEST_CASE("the README's server greets a client") {
    auto listener = weft::TcpListener::bind("127.0.0.1:0");
    const auto address = listener.local_addr();
    weft::Runtime runtime(weft::RuntimeOptions{.workers = 2});
    auto server = runtime.spawn(readme::serve(std::move(listener)));
    CHECK(runtime.block_on(dial(address)) == "Thanks for dialing in, Ferris!\n");
    server.abort();
  }
}
