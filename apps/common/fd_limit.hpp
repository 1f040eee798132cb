// Raises this process's soft RLIMIT_NOFILE to its hard limit, as Go's runtime does at start:
// a server or load generator with thousands of connections needs more than the usual soft
// 1,024, and the hard limit is what the administrator actually allows. Returns the new soft
// limit.
#pragma once

#include <sys/resource.h>

namespace weft_apps {

inline rlim_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace weft_apps
