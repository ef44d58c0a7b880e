/* test_net.c: socket helpers and DNS lookups. */
#include "test.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int port_of(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
  return ntohs(a.sin_port);
}

struct waited {
  int calls, status;
};

static void on_wait(weft_stream_t *s, int event, int status, void *data) {
  struct waited *w = data;
  (void)s, (void)event;
  w->calls++;
  w->status = status;
}

static void net_connect_and_accept(void) {
  weft_loop_t *loop;
  weft_stream_t *c;
  struct waited w = {0, 1};
  struct sockaddr_in a = loopback(0);
  int l, fd, s;
  ASSERT_OK(weft_loop_new(&loop));
  l = weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_STREAM, 16,
                         WEFT_SOCKET_REUSEADDR);
  ASSERT_GE(l, 0);
  ASSERT_EQ(weft_socket_accept(l), WEFT_EAGAIN);
  a = loopback(port_of(l));
  fd = weft_socket_connect((struct sockaddr *)&a, sizeof a, SOCK_STREAM);
  ASSERT_GE(fd, 0);
  ASSERT_OK(weft_stream_open(loop, fd, 0, &c));
  ASSERT_OK(weft_stream_wait(c, WEFT_STREAM_WRITE, 5000, on_wait, &w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.status, 0);
  ASSERT_OK(weft_socket_error(fd));
  s = weft_socket_accept(l);
  ASSERT_GE(s, 0);
  ASSERT_OK(weft_stream_write(c, "hi", 2, NULL));
  {
    char buf[4];
    ASSERT_EQ(read(s, buf, sizeof buf), 2);
  }
  ASSERT_OK(weft_stream_close(c));
  test_free_loop(loop);
  close(s);
  close(l);
}

static void net_connect_refused(void) {
  weft_loop_t *loop;
  weft_stream_t *c;
  struct waited w = {0, 1};
  struct sockaddr_in a = loopback(0);
  int l, fd, port;
  ASSERT_OK(weft_loop_new(&loop));
  /* A port that was just free: bind, note it, close. */
  l = weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_STREAM, 1, 0);
  ASSERT_GE(l, 0);
  port = port_of(l);
  close(l);
  a = loopback(port);
  fd = weft_socket_connect((struct sockaddr *)&a, sizeof a, SOCK_STREAM);
  if (fd == WEFT_ECONNREFUSED) { /* refused at once: also right */
    test_free_loop(loop);
    return;
  }
  ASSERT_GE(fd, 0);
  ASSERT_OK(weft_stream_open(loop, fd, 0, &c));
  ASSERT_OK(weft_stream_wait(c, WEFT_STREAM_WRITE, 5000, on_wait, &w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_socket_error(fd), WEFT_ECONNREFUSED);
  ASSERT_OK(weft_stream_close(c));
  test_free_loop(loop);
}

static void net_rejects_bad_input(void) {
  struct sockaddr_in a = loopback(0);
  int l;
  ASSERT_EQ(weft_socket_listen(NULL, 0, SOCK_STREAM, 1, 0), WEFT_EINVAL);
  ASSERT_EQ(weft_socket_listen((struct sockaddr *)&a, sizeof a, 99, 1, 0),
            WEFT_EINVAL);
  ASSERT_EQ(weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_STREAM,
                               1, 0x40),
            WEFT_EINVAL);
  ASSERT_EQ(weft_socket_connect(NULL, 0, SOCK_STREAM), WEFT_EINVAL);
  ASSERT_EQ(weft_socket_accept(-1), WEFT_EBADF);
  /* Two listeners on one port without REUSEPORT. */
  l = weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_STREAM, 1, 0);
  ASSERT_GE(l, 0);
  a = loopback(port_of(l));
  ASSERT_EQ(weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_STREAM,
                               1, 0),
            WEFT_EADDRINUSE);
  close(l);
}

static void net_datagrams(void) {
  struct sockaddr_in a = loopback(0), from;
  unsigned flen = sizeof from;
  char buf[8];
  int u = weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_DGRAM, 0, 0);
  ASSERT_GE(u, 0);
  a = loopback(port_of(u));
  ASSERT_EQ(weft_socket_recvfrom(u, buf, sizeof buf, NULL, NULL), WEFT_EAGAIN);
  ASSERT_EQ(weft_socket_sendto(u, "ping", 4, (struct sockaddr *)&a, sizeof a),
            4);
  ASSERT_EQ(weft_socket_recvfrom(u, buf, sizeof buf, (struct sockaddr *)&from,
                                 &flen),
            4);
  ASSERT(memcmp(buf, "ping", 4) == 0);
  ASSERT_EQ(ntohs(from.sin_port), port_of(u));
  ASSERT_EQ(weft_socket_sendto(u, "too long", 8, (struct sockaddr *)&a,
                               sizeof a),
            8);
  ASSERT_EQ(weft_socket_recvfrom(u, buf, 3, NULL, NULL), WEFT_EMSGSIZE);
  ASSERT_EQ(weft_socket_sendto(-1, "x", 1, NULL, 0), WEFT_EINVAL);
  close(u);
}

struct lookup {
  int calls, status, found;
  char host[64];
};

static void on_addrinfo(weft_loop_t *loop, int status, struct addrinfo *res,
                        void *data) {
  struct lookup *k = data;
  struct addrinfo *ai;
  (void)loop;
  k->calls++;
  k->status = status;
  for (ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET &&
        ((struct sockaddr_in *)ai->ai_addr)->sin_port == htons(80))
      k->found++;
  weft_freeaddrinfo(res);
}

static void on_nameinfo(weft_loop_t *loop, int status, const char *host,
                        const char *service, void *data) {
  struct lookup *k = data;
  (void)loop, (void)service;
  k->calls++;
  k->status = status;
  if (host) snprintf(k->host, sizeof k->host, "%s", host);
}

static void dns_getaddrinfo_resolves(void) {
  weft_loop_t *loop;
  struct lookup k = {0, 1, 0, ""}, bad = {0, 0, 0, ""}, back = {0, 1, 0, ""};
  struct addrinfo hints;
  struct sockaddr_in a = loopback(80);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_getaddrinfo(loop, "127.0.0.1", "80", &hints, on_addrinfo,
                             &k));
  hints.ai_flags = AI_NUMERICHOST;
  ASSERT_OK(weft_getaddrinfo(loop, "not an address", NULL, &hints,
                             on_addrinfo, &bad));
  ASSERT_OK(weft_getnameinfo(loop, (struct sockaddr *)&a,
                             NI_NUMERICHOST | NI_NUMERICSERV, on_nameinfo,
                             &back));
  ASSERT_EQ(weft_getaddrinfo(loop, NULL, NULL, NULL, on_addrinfo, &k),
            WEFT_EINVAL);
  ASSERT_EQ(weft_getaddrinfo(loop, "x", NULL, NULL, NULL, &k), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY); /* lookups pending */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(k.calls, 1);
  ASSERT_EQ(k.status, 0);
  ASSERT_EQ(k.found, 1);
  ASSERT_EQ(bad.calls, 1);
  ASSERT_EQ(bad.status, WEFT_EAI_NONAME);
  ASSERT_EQ(back.status, 0);
  ASSERT_STR_EQ(back.host, "127.0.0.1");
  ASSERT_STR_EQ(weft_err_name(WEFT_EAI_NONAME), "EAI_NONAME");
  test_free_loop(loop);
}

/* A connected loopback pair: *client (connecting through weft) and
 * *server (accepted), both blocking-free descriptors. */
static void tcp_pair(int *client, int *server) {
  struct sockaddr_in a = loopback(0);
  int l = weft_socket_listen((struct sockaddr *)&a, sizeof a, SOCK_STREAM, 4, 0);
  ASSERT_GE(l, 0);
  a = loopback(port_of(l));
  *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(*client, 0);
  ASSERT_OK(connect(*client, (struct sockaddr *)&a, sizeof a));
  do *server = weft_socket_accept(l);
  while (*server == WEFT_EAGAIN);
  ASSERT_GE(*server, 0);
  close(l);
}

/* Closes fd with SO_LINGER 0: the peer gets a reset, not an end of file. */
static void reset_close(int fd) {
  struct linger lg = {1, 0};
  ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  close(fd);
}

/* weft_stream_fill, waiting for readability while it says EAGAIN. */
static int fill_waiting(weft_loop_t *loop, weft_stream_t *s) {
  int r;
  while ((r = weft_stream_fill(s)) == WEFT_EAGAIN) {
    struct waited w = {0, 1};
    ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &w));
    ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
    ASSERT_EQ(w.status, 0);
  }
  return r;
}

static void net_reset_is_kept_after_the_data(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  const char *b;
  size_t n;
  int peer, fd;
  ASSERT_OK(weft_loop_new(&loop));
  tcp_pair(&peer, &fd);
  ASSERT_OK(weft_stream_open(loop, fd, 0, &s));
  ASSERT_EQ(write(peer, "last words", 10), 10);
  reset_close(peer);
  /* The data sent before the reset, then the reset, on every later read
   * (the kernel reports it once, then says end of file). */
  ASSERT_EQ(fill_waiting(loop, s), 10);
  b = weft_stream_buffered(s, &n);
  ASSERT_EQ(n, 10);
  ASSERT(memcmp(b, "last words", 10) == 0);
  ASSERT_OK(weft_stream_consume(s, n));
  ASSERT_EQ(fill_waiting(loop, s), WEFT_ECONNRESET);
  ASSERT_EQ(weft_stream_fill(s), WEFT_ECONNRESET);
  {
    char buf[4];
    ASSERT_EQ(weft_stream_read(s, buf, sizeof buf), WEFT_ECONNRESET);
  }
  ASSERT_OK(weft_stream_close(s));
  test_free_loop(loop);
}

static void net_reset_met_by_a_write_is_no_clean_end(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  struct waited w = {0, 1};
  size_t took;
  int peer, fd, err;
  ASSERT_OK(weft_loop_new(&loop));
  tcp_pair(&peer, &fd);
  ASSERT_OK(weft_stream_open(loop, fd, 0, &s));
  reset_close(peer);
  /* (readable once the reset arrived) */
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  /* The write takes the socket's error; the read that follows must still
   * say reset, not end of file. */
  err = weft_stream_write(s, "x", 1, &took);
  ASSERT_EQ(err, WEFT_ECONNRESET);
  ASSERT_EQ(weft_stream_fill(s), WEFT_ECONNRESET);
  ASSERT_OK(weft_stream_close(s));
  test_free_loop(loop);
}

TEST_MAIN(T(net_connect_and_accept) T(net_connect_refused)
              T(net_reset_is_kept_after_the_data)
              T(net_reset_met_by_a_write_is_no_clean_end)
              T(net_rejects_bad_input) T(net_datagrams)
                  T(dns_getaddrinfo_resolves))
