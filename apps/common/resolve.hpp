// Host names for the bundled apps' --host flag: a numeric address, or a name such as
// localhost, looked up with getaddrinfo before the runtime starts (the lookup may block).
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "weft/socket_address.hpp"

namespace weft_apps {

/// The address `host` names, with `port`: its first IPv4 address if it has one, else its
/// first IPv6 one. IPv4 first because the greeter listens on 127.0.0.1 by default, and
/// glibc lists ::1 before 127.0.0.1 for localhost. Throws std::runtime_error with
/// getaddrinfo's message when the name does not resolve.
inline weft::SocketAddress resolve_host(const std::string& host, std::uint16_t port) {
  std::string unbracketed = host;
  if (unbracketed.size() > 2 && unbracketed.front() == '[' && unbracketed.back() == ']') {
    unbracketed = unbracketed.substr(1, unbracketed.size() - 2);  // [::1], as in an address
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(unbracketed.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve host '" + host + "': " + ::gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
  const addrinfo* chosen = found;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family == AF_INET) {
      chosen = entry;
      break;
    }
  }
  return weft::SocketAddress::from_native(chosen->ai_addr, chosen->ai_addrlen);
}

}  // namespace weft_apps
