#include "log.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

namespace greeter {
namespace {

class Log {
 public:
  void append(int fd, std::string line) {
    line.push_back('\n');
    std::lock_guard lock(m_mutex);
    if (m_stopped) return;
    if (m_queued_bytes + line.size() > k_max_queued_bytes) {
      ++m_dropped;
      ++m_dropped_unreported;
      return;
    }
    m_queued_bytes += line.size();
    m_lines.push_back({fd, std::move(line)});
    if (!m_thread.joinable()) m_thread = std::thread([this] { run(); });
    m_wake.notify_one();
  }

  void flush(std::chrono::milliseconds limit) {
    std::unique_lock lock(m_mutex);
    m_written.wait_for(lock, limit, [this] { return m_lines.empty() && !m_writing; });
    m_stopped = true;
    m_wake.notify_one();
    if (!m_thread.joinable()) return;
    // The writer gives up within one poll interval of seeing m_stopped; the wait is only long
    // if write(2) itself hangs (a regular file on a dead disk), and then the thread is left to
    // the process's exit. The Log is never destroyed, so it may outlive main.
    const bool ended = m_written.wait_for(lock, 2 * k_poll_interval, [this] { return m_ended; });
    lock.unlock();
    if (ended) {
      m_thread.join();
    } else {
      m_thread.detach();
    }
  }

  std::size_t dropped() {
    std::lock_guard lock(m_mutex);
    return m_dropped;
  }

 private:
  static constexpr std::chrono::milliseconds k_poll_interval{100};

  struct Line {
    int fd;
    std::string text;
  };

  void run() {
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_wake.wait(lock, [this] { return !m_lines.empty() || m_stopped; });
      if (m_lines.empty() || m_stopped) break;
      Line line = std::move(m_lines.front());
      m_lines.pop_front();
      m_queued_bytes -= line.text.size();
      std::string report;
      if (m_dropped_unreported != 0) {
        report = format("weft-greeter: %llu log line(s) dropped: the output was not being read\n",
                        static_cast<unsigned long long>(std::exchange(m_dropped_unreported, 0)));
      }
      m_writing = true;
      lock.unlock();
      if (!report.empty()) write_all(STDERR_FILENO, report);
      write_all(line.fd, line.text);
      lock.lock();
      m_writing = false;
      if (m_lines.empty()) m_written.notify_all();
    }
    m_ended = true;
    m_written.notify_all();
  }

  /// Writes `text` unless the output's reader has gone or flush() stopped the log.
  void write_all(int fd, std::string_view text) {
    const int slot = fd == STDOUT_FILENO ? 0 : 1;
    if (m_broken[slot]) return;  // only this thread touches m_broken
    while (!text.empty()) {
      pollfd output{fd, POLLOUT, 0};
      const int ready = ::poll(&output, 1, static_cast<int>(k_poll_interval.count()));
      if (ready == 0 || (ready < 0 && errno == EINTR)) {
        if (stopped()) return;
        continue;
      }
      if (ready < 0 || (output.revents & (POLLERR | POLLNVAL)) != 0) {
        m_broken[slot] = true;
        return;
      }
      // At most PIPE_BUF: a pipe that polls writable has that much room, so this never
      // waits in the kernel for the reader.
      const ssize_t n = ::write(fd, text.data(), std::min<std::size_t>(text.size(), PIPE_BUF));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        m_broken[slot] = true;  // EPIPE, EBADF, ENOSPC...: nothing more will get through
        return;
      }
      text.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  bool stopped() {
    std::lock_guard lock(m_mutex);
    return m_stopped;
  }

  std::mutex m_mutex;
  std::condition_variable m_wake;     // the writer waits for lines, or for the stop
  std::condition_variable m_written;  // flush waits for the queue to empty, or the end
  std::deque<Line> m_lines;
  std::size_t m_queued_bytes = 0;
  std::uint64_t m_dropped = 0;
  std::uint64_t m_dropped_unreported = 0;
  bool m_writing = false;
  bool m_stopped = false;
  bool m_ended = false;
  bool m_broken[2] = {false, false};
  std::thread m_thread;
};

Log& the_log() {
  // Never destroyed: a writer left to the process's exit (see flush) may still use it.
  static Log* const log = new Log;
  return *log;
}

}  // namespace

void log_out(std::string line) {
  the_log().append(STDOUT_FILENO, std::move(line));
}

void log_err(std::string line) {
  the_log().append(STDERR_FILENO, std::move(line));
}

void flush_log(std::chrono::milliseconds limit) {
  the_log().flush(limit);
}

std::size_t log_lines_dropped() {
  return the_log().dropped();
}

}  // namespace greeter
