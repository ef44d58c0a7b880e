/* net.c: socket helpers that hand out non-blocking, close-on-exec
 * descriptors for streams. */
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail_close(int fd) {
  int err = weft__err_from_errno(errno);
  close(fd);
  return err;
}

int weft_socket_listen(const struct sockaddr *addr, unsigned addrlen,
                       int socktype, int backlog, int flags) {
  int fd, on = 1;
  if (!addr || (socktype != SOCK_STREAM && socktype != SOCK_DGRAM) ||
      (flags & ~(WEFT_SOCKET_REUSEADDR | WEFT_SOCKET_REUSEPORT |
                 WEFT_SOCKET_V6ONLY)))
    return WEFT_EINVAL;
  fd = socket(addr->sa_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return weft__err_from_errno(errno);
  if ((flags & WEFT_SOCKET_REUSEADDR) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
    return fail_close(fd);
  if ((flags & WEFT_SOCKET_REUSEPORT) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
    return fail_close(fd);
  if (addr->sa_family == AF_INET6) {
    int v6only = !!(flags & WEFT_SOCKET_V6ONLY);
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
      return fail_close(fd);
  }
  if (bind(fd, addr, (socklen_t)addrlen) < 0) return fail_close(fd);
  if (socktype == SOCK_STREAM &&
      listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
    return fail_close(fd);
  return fd;
}

int weft_socket_connect(const struct sockaddr *addr, unsigned addrlen,
                        int socktype) {
  int fd, r;
  if (!addr || (socktype != SOCK_STREAM && socktype != SOCK_DGRAM))
    return WEFT_EINVAL;
  fd = socket(addr->sa_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return weft__err_from_errno(errno);
  do r = connect(fd, addr, (socklen_t)addrlen);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) return fail_close(fd);
  return fd;
}

int weft_socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return weft__err_from_errno(errno);
  return err ? weft__err_from_errno(err) : 0;
}

int weft_socket_accept(int fd) {
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
  if (c >= 0) return c;
  if (errno == EWOULDBLOCK) return WEFT_EAGAIN;
  return weft__err_from_errno(errno);
}

int weft_socket_sendto(int fd, const void *buf, size_t len,
                       const struct sockaddr *addr, unsigned addrlen) {
  ssize_t r;
  if (fd < 0 || (!buf && len)) return WEFT_EINVAL;
  if (len > INT32_MAX) return WEFT_EMSGSIZE;
  do r = sendto(fd, buf, len, MSG_NOSIGNAL, addr, (socklen_t)addrlen);
  while (r < 0 && errno == EINTR);
  if (r >= 0) return (int)r;
  if (errno == EWOULDBLOCK) return WEFT_EAGAIN;
  return weft__err_from_errno(errno);
}

int weft_socket_recvfrom(int fd, void *buf, size_t len, struct sockaddr *from,
                         unsigned *fromlen) {
  socklen_t flen = fromlen ? (socklen_t)*fromlen : 0;
  ssize_t r;
  if (fd < 0 || (!buf && len)) return WEFT_EINVAL;
  if (len > INT32_MAX) len = INT32_MAX;
  do r = recvfrom(fd, buf, len, MSG_TRUNC, from, from ? &flen : NULL);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return errno == EWOULDBLOCK ? WEFT_EAGAIN : weft__err_from_errno(errno);
  if (fromlen) *fromlen = (unsigned)flen;
  return r > (ssize_t)len ? WEFT_EMSGSIZE : (int)r;
}
