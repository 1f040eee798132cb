// The searching/parked accounting (lib/sched/idle.cpp), driven by hand.
#include <doctest/doctest.h>

#include "sched/idle.hpp"

using weft::detail::Idle;

TEST_SUITE("idle") {
  TEST_CASE("at most half the workers search at once") {
    Idle idle(4);
    CHECK(idle.transition_worker_to_searching());
    CHECK(idle.transition_worker_to_searching());
    CHECK_FALSE(idle.transition_worker_to_searching());
    CHECK(idle.searching() == 2);
  }

  TEST_CASE("the last searcher to find work is told to wake another") {
    Idle idle(4);
    REQUIRE(idle.transition_worker_to_searching());
    REQUIRE(idle.transition_worker_to_searching());
    CHECK_FALSE(idle.transition_worker_from_searching());
    CHECK(idle.transition_worker_from_searching());
  }

  TEST_CASE(
      "a worker refused the search re-checks the queues when it parks with nobody searching") {
    Idle idle(4);
    REQUIRE(idle.transition_worker_to_searching());
    REQUIRE(idle.transition_worker_to_searching());
    REQUIRE_FALSE(idle.transition_worker_to_searching());  // worker 3 is refused
    (void)idle.transition_worker_from_searching();         // both searchers find work
    (void)idle.transition_worker_from_searching();
    CHECK(idle.transition_worker_to_parked(3, false));  // nobody searches: it must re-check
  }

  TEST_CASE("a worker that parks while another searches leaves the re-check to the searcher") {
    Idle idle(4);
    REQUIRE(idle.transition_worker_to_searching());
    CHECK_FALSE(idle.transition_worker_to_parked(3, false));
  }

  TEST_CASE("published work wakes one parked worker, counted as searching") {
    Idle idle(2);
    CHECK_FALSE(idle.should_notify());  // everyone is awake
    (void)idle.transition_worker_to_parked(1, false);
    CHECK(idle.should_notify());
    CHECK(idle.unpark_one() == 1);
    CHECK(idle.searching() == 1);
    CHECK(idle.unparked() == 2);
    CHECK(idle.transition_worker_from_parked(1));
    CHECK(idle.unpark_one() == -1);  // nobody left to wake
  }

  TEST_CASE("a spurious wake-up leaves the worker parked") {
    Idle idle(2);
    (void)idle.transition_worker_to_parked(0, false);
    CHECK_FALSE(idle.transition_worker_from_parked(0));
  }
}
