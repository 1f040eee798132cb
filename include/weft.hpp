// weft: lightweight threads for C++20. The umbrella header.
#pragma once

#include "weft/error.hpp"
#include "weft/future.hpp"
#include "weft/join.hpp"
#include "weft/join_handle.hpp"
#include "weft/oneshot.hpp"
#include "weft/poll.hpp"
#include "weft/runtime.hpp"
#include "weft/select.hpp"
#include "weft/signal.hpp"
#include "weft/socket_address.hpp"
#include "weft/task.hpp"
#include "weft/tcp_listener.hpp"
#include "weft/tcp_stream.hpp"
#include "weft/time.hpp"
#include "weft/waker.hpp"
#include "weft/yield.hpp"
