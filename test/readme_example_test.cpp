// The examples from README.md, compiled and run so that the README cannot rot. Keep the two
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

weft::Task<void> greet(weft::TcpStream stream) {
  using namespace std::chrono_literals;
  co_await stream.write_all("Who are you?\n");
  auto first = co_await weft::select(stream.read_until('\n', 1024), weft::sleep_for(10s));
  if (first.index() == 1) co_return;  // the timer won: drop the silent client
  const std::string& line = std::get<0>(first).bytes;
  co_await stream.write_all("Thanks for dialing in, " + line.substr(0, line.find('\n')) + "!\n");
}

weft::Task<void> serve(weft::TcpListener listener) {
  for (;;) {
    auto [stream, peer] = co_await listener.accept();
    weft::spawn(greet(std::move(stream)));  // the handle is dropped: the task runs detached
  }
}

weft::Task<void> produce(weft::mpsc::Sender<std::string> out) {
  for (const char* name : {"Ferris", "Gopher", "Duke"})
    co_await out.send(name);  // waits while the channel is full
}

weft::Task<std::size_t> total_length() {
  auto [tx, rx] = weft::mpsc::channel<std::string>(16);
  weft::spawn(produce(std::move(tx)));  // rx sees the end when the producer's sender goes
  std::size_t total = 0;
  while (std::optional<std::string> name = co_await rx.recv()) {
    // A blocking call (a file, a DNS lookup, a C library) runs off the workers. The lambda
    // is named first: GCC 12 miscompiles a capturing lambda temporary inside co_await.
    auto measure = [name = std::move(*name)] { return name.size(); };
    total += co_await weft::spawn_blocking(std::move(measure));
  }
  co_return total;
}

}  // namespace readme

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
