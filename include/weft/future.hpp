// The Future concept: anything with `poll(Context&) -> Poll<T>`.
//
// A user writes a leaf future as a plain class and `co_await`s it inside a weft::Task. The
// task polls it again each time the waker it stored is woken, until it is ready.
#pragma once

#include <type_traits>

#include "weft/poll.hpp"
#include "weft/waker.hpp"

namespace weft {

namespace detail {
template <class P>
struct IsPoll : std::false_type {};
template <class T>
struct IsPoll<Poll<T>> : std::true_type {};
}  // namespace detail

template <class F>
concept Future = requires(F& future, Context& cx) {
  {future.poll(cx)};
  requires detail::IsPoll<decltype(future.poll(cx))>::value;
};

/// The type a future yields when ready.
template <Future F>
using FutureOutput = typename decltype(std::declval<F&>().poll(std::declval<Context&>()))::Output;

}  // namespace weft
