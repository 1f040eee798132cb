// IoSource, the reactor's registration of one descriptor: what a waiting task sees when libuv
// refuses to watch its descriptor. The refusal is provoked the one way that needs no
// exhausted resource: another libuv handle on the same loop already watches the number.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <optional>
#include <system_error>

#include "io/reactor.hpp"
#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using namespace std::chrono_literals;

namespace {

/// A uv_poll_t of the test's own on the runtime's loop, watching `fd`. Made and closed by ops
/// on the loop's token holder, as every libuv call must be.
struct ForeignWatch {
  int fd;
  uv_poll_t* handle = nullptr;
  std::atomic<int> started{0};  // 1 once watching, -1 if libuv refused
  std::atomic<bool> closed{false};

  static void start(detail::Reactor& reactor, void* self_ptr) noexcept {
    auto* self = static_cast<ForeignWatch*>(self_ptr);
    self->handle = new uv_poll_t;
    self->handle->data = self;
    if (::uv_poll_init(reactor.loop(), self->handle, self->fd) != 0 ||
        ::uv_poll_start(self->handle, UV_READABLE, [](uv_poll_t*, int, int) {}) != 0) {
      // release: pairs with the acquire loads in the test's wait.
      self->started.store(-1, std::memory_order_release);
      return;
    }
    self->started.store(1, std::memory_order_release);  // see above
  }

  static void close(detail::Reactor&, void* self_ptr) noexcept {
    auto* self = static_cast<ForeignWatch*>(self_ptr);
    ::uv_close(reinterpret_cast<uv_handle_t*>(self->handle), [](uv_handle_t* handle) {
      auto* watch = static_cast<ForeignWatch*>(handle->data);
      delete reinterpret_cast<uv_poll_t*>(handle);
      watch->closed.store(true, std::memory_order_release);  // pairs with the test's acquire
    });
  }
};

}  // namespace

TEST_SUITE("io_source") {
  TEST_CASE("a descriptor libuv refuses to watch fails the wait with libuv's error, no spin") {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    Runtime runtime(RuntimeOptions{.workers = 1});
    auto body = [](int fd) -> Task<int> {
      ForeignWatch watch{fd};
      detail::Reactor& reactor = detail::current_reactor();
      reactor.submit({&ForeignWatch::start, &watch});
      if (!co_await test::yield_until(
              [&] { return watch.started.load(std::memory_order_acquire) != 0; })) {
        co_return -1;
      }
      if (watch.started.load(std::memory_order_acquire) != 1) co_return -2;
      int error = 0;
      {
        std::optional<TcpStream> stream(std::in_place, fd);  // adopts the socket
        char buffer[8];
        try {
          // Nothing was sent, so the read waits; the wait cannot be watched. The old code
          // woke the reader to retry, which read EAGAIN and waited again, until this timeout.
          (void)co_await timeout(5s, stream->read(buffer));
        } catch (const std::system_error& failure) {
          error = failure.code().value();
        } catch (const TimedOut&) {
          error = -3;
        }
        // The foreign handle goes first: the stream's close must not free a number it watches.
        reactor.submit({&ForeignWatch::close, &watch});
        if (!co_await test::yield_until(
                [&] { return watch.closed.load(std::memory_order_acquire); })) {
          co_return -4;
        }
      }
      co_return error;
    };
    CHECK(runtime.block_on(body(pair[0])) == EEXIST);
    ::close(pair[1]);
  }
}
