#include "log.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
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
    if (m_abandoned) return;
    if (m_queued_bytes + line.size() > k_max_queued_bytes) {
      ++m_dropped;
      ++m_dropped_unreported;
      return;
    }
    m_queued_bytes += line.size();
    m_lines.push_back({fd, std::move(line)});
    if (!m_thread.joinable()) start();
    m_wake.notify_one();
  }

  void flush(std::chrono::milliseconds limit) {
    std::unique_lock lock(m_mutex);
    m_written.wait_for(lock, limit, [this] { return m_lines.empty() && !m_writing; });
    if (!m_thread.joinable()) return;
    m_stop = true;
    m_wake.notify_one();
    // The writer gives up within one poll interval of seeing m_stop; the wait is only long
    // if write(2) itself hangs (a regular file on a dead disk). Then the thread is left to the
    // process's exit and the log drops every later line. The Log is never destroyed, so the
    // thread may outlive main.
    const bool ended = m_written.wait_for(lock, 2 * k_poll_interval, [this] { return m_ended; });
    if (!ended) {
      m_abandoned = true;
      m_lines.clear();
      m_queued_bytes = 0;
      m_thread.detach();
      return;
    }
    lock.unlock();
    m_thread.join();
    lock.lock();
    if (!m_lines.empty()) start();  // logged while the writer was stopping
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

  /// Under m_mutex, with no writer thread.
  void start() {
    m_stop = false;
    m_ended = false;
    m_thread = std::thread([this] { run(); });
  }

  void run() {
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_wake.wait(lock, [this] { return !m_lines.empty() || m_stop; });
      if (m_stop) break;
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

  /// Writes `text` unless the output's reader has gone or flush() is stopping the writer.
  void write_all(int fd, std::string_view text) {
    const int slot = fd == STDOUT_FILENO ? 0 : 1;
    if (m_broken[slot]) return;  // only the writer touches m_broken, one writer at a time
    while (!text.empty()) {
      pollfd output{fd, POLLOUT, 0};
      const int ready = ::poll(&output, 1, static_cast<int>(k_poll_interval.count()));
      if (ready == 0 || (ready < 0 && errno == EINTR)) {
        if (stopping()) return;
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

  bool stopping() {
    std::lock_guard lock(m_mutex);
    return m_stop;
  }

  std::mutex m_mutex;
  std::condition_variable m_wake;     // the writer waits for lines, or for the stop
  std::condition_variable m_written;  // flush waits for the queue to empty, or the end
  std::deque<Line> m_lines;
  std::size_t m_queued_bytes = 0;
  std::uint64_t m_dropped = 0;
  std::uint64_t m_dropped_unreported = 0;
  bool m_writing = false;
  bool m_stop = false;       // flush asks the writer to end
  bool m_ended = false;      // the writer has ended
  bool m_abandoned = false;  // a writer hung in write(2) was left behind
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
