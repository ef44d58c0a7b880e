/* test_tls.c: TLS streams, weft to weft over socket pairs in one loop,
 * with certificates made by the openssl command (tests/tls/mkcerts.sh). */
#include "test.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[64];

static void remove_certs(void) {
  char cmd[128];
  if (!dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ASSERT_OK(system(cmd));
}

/* The certificates, made once per run. */
static const char *cert(const char *name) {
  static char path[8][128];
  static int next;
  char *p = path[next++ % 8];
  if (!dir[0]) {
    char cmd[256];
    snprintf(dir, sizeof dir, "/tmp/weft-tls-c-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "sh %s/tests/tls/mkcerts.sh %s", WEFT_SOURCE_DIR,
             dir);
    ASSERT_OK(system(cmd));
    atexit(remove_certs);
  }
  snprintf(p, 128, "%s/%s", dir, name);
  return p;
}

static weft_tls_t *server_config(const char *name) {
  weft_tls_t *tls;
  char c[64], k[64];
  snprintf(c, sizeof c, "%s.pem", name);
  snprintf(k, sizeof k, "%s.key", name);
  ASSERT_OK(weft_tls_new(WEFT_TLS_SERVER, &tls));
  ASSERT_OK(weft_tls_set_cert(tls, cert(c), cert(k)));
  return tls;
}

static weft_tls_t *client_config(void) {
  weft_tls_t *tls;
  ASSERT_OK(weft_tls_new(WEFT_TLS_CLIENT, &tls));
  ASSERT_OK(weft_tls_set_ca(tls, cert("ca.pem"), NULL));
  return tls;
}

/* One side of a connection: its stream and whether it waits to read. */
typedef struct side {
  weft_stream_t *s;
  int waiting;
  int status;
} side;

static void on_ready(weft_stream_t *s, int event, int status, void *data) {
  side *d = data;
  (void)s, (void)event;
  d->waiting = 0;
  d->status = status;
}

/* Waits (once) for side d to be readable. */
static void want_read(side *d) {
  if (d->waiting) return;
  ASSERT_OK(weft_stream_wait(d->s, WEFT_STREAM_READ, -1, on_ready, d));
  d->waiting = 1;
}

/* A connected pair of streams over a socket pair. */
static void pair(weft_loop_t *loop, side *a, side *b) {
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &a->s));
  ASSERT_OK(weft_stream_open(loop, sv[1], 0, &b->s));
}

/* Runs both handshakes to their end; stores their results. */
static void handshake(weft_loop_t *loop, side *a, side *b, int *ra, int *rb) {
  *ra = *rb = WEFT_EAGAIN;
  for (;;) {
    if (*ra == WEFT_EAGAIN && !a->waiting) *ra = weft_tls_handshake(a->s);
    if (*rb == WEFT_EAGAIN && !b->waiting) *rb = weft_tls_handshake(b->s);
    if (*ra != WEFT_EAGAIN && *rb != WEFT_EAGAIN) return;
    if (*ra == WEFT_EAGAIN) want_read(a);
    if (*rb == WEFT_EAGAIN) want_read(b);
    weft_loop_run(loop, WEFT_RUN_ONCE);
  }
}

/* A client and a server, connected and through their handshakes. */
static void connect_pair(weft_loop_t *loop, weft_tls_t *ctls,
                         weft_tls_t *stls, const char *name, side *c,
                         side *s) {
  int rc, rs;
  pair(loop, c, s);
  ASSERT_OK(weft_tls_start(c->s, ctls, name));
  ASSERT_OK(weft_tls_start(s->s, stls, NULL));
  handshake(loop, c, s, &rc, &rs);
  ASSERT_OK(rc);
  ASSERT_OK(rs);
}

/* Reads exactly len bytes from d, running the loop between reads. */
static void read_all(weft_loop_t *loop, side *d, char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    int r = weft_stream_read(d->s, buf + got, len - got);
    if (r == WEFT_EAGAIN) {
      want_read(d);
      while (d->waiting) weft_loop_run(loop, WEFT_RUN_ONCE);
      ASSERT_OK(d->status);
      continue;
    }
    ASSERT_GT(r, 0);
    got += (size_t)r;
  }
}

/* Reads until d says something other than bytes or WEFT_EAGAIN. */
static int read_end(weft_loop_t *loop, side *d) {
  char buf[4096];
  for (;;) {
    int r = weft_stream_read(d->s, buf, sizeof buf);
    if (r > 0) continue;
    if (r != WEFT_EAGAIN) return r;
    want_read(d);
    while (d->waiting) weft_loop_run(loop, WEFT_RUN_ONCE);
  }
}

static void close_pair(weft_loop_t *loop, side *a, side *b) {
  ASSERT_OK(weft_stream_close(a->s));
  ASSERT_OK(weft_stream_close(b->s));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
}

static void tls_rejects_bad_input(void) {
  weft_loop_t *loop;
  weft_tls_t *tls, *client;
  const char *alpn[] = {"h2", ""};
  side a, b;
  char buf[16];
  size_t took;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_tls_new(7, &tls), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_new(WEFT_TLS_CLIENT, NULL), WEFT_EINVAL);
  weft_tls_free(NULL);
  ASSERT_OK(weft_tls_new(WEFT_TLS_SERVER, &tls));
  ASSERT_STR_EQ(weft_tls_error(tls), "");
  ASSERT_EQ(weft_tls_set_cert(tls, "/nonexistent/srv.pem", NULL), WEFT_ENOENT);
  ASSERT_STR_EQ(weft_tls_error(tls), "cert '/nonexistent/srv.pem': not found");
  ASSERT_EQ(weft_tls_set_cert(tls, cert("server.pem"), "/nonexistent/k"),
            WEFT_ENOENT);
  ASSERT_STR_EQ(weft_tls_error(tls), "key '/nonexistent/k': not found");
  ASSERT_EQ(weft_tls_set_cert(tls, cert("ca.srl"), cert("server.key")),
            WEFT_ETLS);
  ASSERT(strncmp(weft_tls_error(tls), "cert '", 6) == 0);
  ASSERT_EQ(weft_tls_set_cert(tls, cert("server.pem"), cert("wrong.key")),
            WEFT_ETLS);
  ASSERT(strstr(weft_tls_error(tls), "wrong.key': key values mismatch"));
  ASSERT_EQ(weft_tls_set_client_ca(tls, "/nonexistent/ca"), WEFT_ENOENT);
  ASSERT_EQ(weft_tls_set_verify(tls, 0), WEFT_EINVAL); /* a server */
  ASSERT_EQ(weft_tls_set_alpn(tls, alpn, 2), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_set_alpn(tls, alpn, 0), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_set_min_version(tls, 0x0301), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_set_ciphers(tls, "NO-SUCH-CIPHER"), WEFT_ETLS);
  ASSERT_EQ(weft_tls_set_ciphers(tls, ":"), WEFT_ETLS);
  ASSERT_EQ(weft_tls_set_ca(tls, NULL, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_set_ca(tls, "/nonexistent/ca.pem", NULL), WEFT_ENOENT);
  ASSERT_STR_EQ(weft_tls_error(tls), "cafile '/nonexistent/ca.pem': not found");
  ASSERT_OK(weft_tls_new(WEFT_TLS_CLIENT, &client));
  ASSERT_EQ(weft_tls_set_client_ca(client, cert("ca.pem")), WEFT_EINVAL);
  pair(loop, &a, &b);
  /* A server without a certificate, a verifying client without a name. */
  ASSERT_EQ(weft_tls_start(a.s, tls, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_start(b.s, client, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_start(NULL, client, "x"), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_start(b.s, NULL, "x"), WEFT_EINVAL);
  /* Not TLS streams. */
  ASSERT_EQ(weft_tls_handshake(a.s), WEFT_EINVAL);
  ASSERT_EQ(weft_tls_get(a.s, WEFT_TLS_VERSION, buf, sizeof buf), WEFT_EINVAL);
  ASSERT(weft_tls_reason(a.s) == NULL);
  /* Before the handshake: no reads, writes or facts. */
  ASSERT_OK(weft_tls_start(b.s, client, "localhost"));
  ASSERT_EQ(weft_tls_start(b.s, client, "localhost"), WEFT_EINVAL);
  ASSERT_EQ(weft_stream_read(b.s, buf, sizeof buf), WEFT_ENOTCONN);
  ASSERT_EQ(weft_stream_fill(b.s), WEFT_ENOTCONN);
  ASSERT_EQ(weft_stream_write(b.s, "x", 1, &took), WEFT_ENOTCONN);
  ASSERT_EQ(took, 0);
  ASSERT_EQ(weft_tls_get(b.s, WEFT_TLS_VERSION, buf, sizeof buf),
            WEFT_ENOTCONN);
  ASSERT_EQ(weft_tls_get(b.s, 99, buf, sizeof buf), WEFT_EINVAL);
  /* The configuration outlives its creator's reference while a stream
   * uses it. */
  weft_tls_free(client);
  close_pair(loop, &a, &b);
  weft_tls_free(tls);
  /* The loop still works. */
  {
    weft_tls_t *s = server_config("server"), *c = client_config();
    connect_pair(loop, c, s, "localhost", &a, &b);
    close_pair(loop, &a, &b);
    weft_tls_free(s);
    weft_tls_free(c);
  }
  test_free_loop(loop);
}

static void tls_exchanges_and_describes(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  const char *calpn[] = {"h2", "http/1.1"}, *salpn[] = {"http/1.1", "h2"};
  side c, s;
  char buf[4096];
  size_t took;
  int n;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_tls_set_alpn(ctls, calpn, 2));
  ASSERT_OK(weft_tls_set_alpn(stls, salpn, 2));
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  ASSERT_OK(weft_stream_write(c.s, "hello", 5, &took));
  ASSERT_EQ(took, 5);
  read_all(loop, &s, buf, 5);
  ASSERT(memcmp(buf, "hello", 5) == 0);
  /* What each side knows. */
  ASSERT_EQ(weft_tls_get(c.s, WEFT_TLS_VERSION, buf, sizeof buf), 7);
  ASSERT_STR_EQ(buf, "TLSv1.3");
  ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_CIPHER, buf, sizeof buf), 0);
  ASSERT(strncmp(buf, "TLS_", 4) == 0);
  /* The server chose the first of its own protocols. */
  ASSERT_EQ(weft_tls_get(c.s, WEFT_TLS_ALPN, buf, sizeof buf), 8);
  ASSERT_STR_EQ(buf, "http/1.1");
  ASSERT_GT(weft_tls_get(s.s, WEFT_TLS_ALPN, buf, sizeof buf), 0);
  ASSERT_STR_EQ(buf, "http/1.1");
  ASSERT_GT(weft_tls_get(s.s, WEFT_TLS_SERVERNAME, buf, sizeof buf), 0);
  ASSERT_STR_EQ(buf, "localhost");
  ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_PEER_SUBJECT, buf, sizeof buf), 0);
  ASSERT_STR_EQ(buf, "O=weft test,CN=localhost");
  ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_PEER_ISSUER, buf, sizeof buf), 0);
  ASSERT_STR_EQ(buf, "CN=weft test CA");
  ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_PEER_SAN, buf, sizeof buf), 0);
  ASSERT_STR_EQ(buf, "localhost\n127.0.0.1");
  ASSERT_EQ(weft_tls_get(c.s, WEFT_TLS_PEER_FINGERPRINT, buf, sizeof buf),
            32 * 3 - 1);
  ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_PEER_PEM, buf, sizeof buf), 0);
  ASSERT(strncmp(buf, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
  {
    char before[32], after[32];
    ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_PEER_NOT_BEFORE, before, 32), 0);
    ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_PEER_NOT_AFTER, after, 32), 0);
    /* mkcerts.sh makes it valid for 30 days */
    ASSERT_EQ(atoll(after) - atoll(before), 30 * 86400);
  }
  /* Truncation is reported as snprintf does; a server's client sent no
   * certificate. */
  n = weft_tls_get(c.s, WEFT_TLS_PEER_ISSUER, buf, 3);
  ASSERT_EQ(n, 15);
  ASSERT_STR_EQ(buf, "CN");
  ASSERT_EQ(weft_tls_get(s.s, WEFT_TLS_PEER_SUBJECT, buf, sizeof buf),
            WEFT_ENOENT);
  ASSERT(weft_tls_reason(c.s) == NULL);
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

/* Client against server certificate name: the handshake's result and the
 * client's reason. */
static void expect_refusal(const char *server, const char *name, int code,
                           const char *reason) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config(server), *ctls = client_config();
  side c, s;
  int rc, rs;
  ASSERT_OK(weft_loop_new(&loop));
  pair(loop, &c, &s);
  ASSERT_OK(weft_tls_start(c.s, ctls, name));
  ASSERT_OK(weft_tls_start(s.s, stls, NULL));
  handshake(loop, &c, &s, &rc, &rs);
  ASSERT_EQ(rc, code);
  ASSERT_STR_EQ(weft_tls_reason(c.s), reason);
  ASSERT_NE(rs, 0); /* the server heard the alert */
  /* The failure stays. */
  ASSERT_EQ(weft_tls_handshake(c.s), code);
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

static void tls_refuses_bad_certificates(void) {
  expect_refusal("self", "localhost", WEFT_ECERT,
                 "certificate verify failed: self-signed certificate");
  expect_refusal("expired", "localhost", WEFT_ECERT,
                 "certificate verify failed: certificate has expired");
  expect_refusal("wrong", "localhost", WEFT_ECERT,
                 "certificate verify failed: hostname mismatch");
  expect_refusal("server", "127.0.0.2", WEFT_ECERT,
                 "certificate verify failed: IP address mismatch");
}

static void tls_without_verification_accepts_any(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("self"), *ctls;
  side c, s;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_tls_new(WEFT_TLS_CLIENT, &ctls));
  ASSERT_OK(weft_tls_set_verify(ctls, 0));
  connect_pair(loop, ctls, stls, NULL, &c, &s);
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

/* Both sides write 1 MiB at once, through queues of 64 KiB, and read
 * what the other wrote. */
static void tls_moves_a_megabyte_each_way(void) {
  enum { MIB = 1 << 20 };
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s, *sides[2] = {&c, &s};
  char *out = malloc(MIB), *in[2] = {malloc(MIB), malloc(MIB)};
  size_t sent[2] = {0, 0}, got[2] = {0, 0};
  int i, wwait[2] = {0, 0};
  side wside[2];
  ASSERT(out && in[0] && in[1]);
  for (i = 0; i < MIB; i++) out[i] = (char)(i * 7 + i / 4096);
  ASSERT_OK(weft_loop_new(&loop));
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  for (i = 0; i < 2; i++) {
    ASSERT_OK(weft_stream_set_queue_limit(sides[i]->s, 64 * 1024));
    memset(&wside[i], 0, sizeof wside[i]);
    wside[i].s = sides[i]->s;
  }
  while (got[0] < MIB || got[1] < MIB) {
    for (i = 0; i < 2; i++) {
      side *d = sides[i];
      size_t took;
      int r;
      if (sent[i] < MIB && !wside[i].waiting) {
        ASSERT_OK(weft_stream_write(d->s, out + sent[i], MIB - sent[i], &took));
        /* the queue's limit holds, give or take a record's overhead */
        ASSERT_LE(weft_stream_queued(d->s), 64 * 1024 + 1024);
        sent[i] += took;
        if (sent[i] < MIB) {
          ASSERT_OK(weft_stream_wait(d->s, WEFT_STREAM_WRITE, -1, on_ready,
                                     &wside[i]));
          wside[i].waiting = 1;
          wwait[i]++;
        }
      }
      while (got[i] < MIB && !d->waiting &&
             (r = weft_stream_read(d->s, in[i] + got[i], MIB - got[i])) != 0) {
        if (r == WEFT_EAGAIN) {
          want_read(d);
          break;
        }
        ASSERT_GT(r, 0);
        got[i] += (size_t)r;
      }
    }
    if (got[0] < MIB || got[1] < MIB) weft_loop_run(loop, WEFT_RUN_ONCE);
  }
  ASSERT(memcmp(in[0], out, MIB) == 0);
  ASSERT(memcmp(in[1], out, MIB) == 0);
  ASSERT_GT(wwait[0], 0); /* back-pressure happened */
  for (i = 0; i < 2; i++) {
    if (sides[i]->waiting) ASSERT_OK(weft_stream_unwait(sides[i]->s, 1));
    sides[i]->waiting = 0;
  }
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  free(out);
  free(in[0]);
  free(in[1]);
  test_free_loop(loop);
}

/* A read that took part of a record leaves the rest in OpenSSL, not in
 * the socket: a read wait must still end at once. */
static void tls_wait_sees_bytes_openssl_holds(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  char buf[100];
  size_t took;
  ASSERT_OK(weft_loop_new(&loop));
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  ASSERT_OK(weft_stream_write(s.s, "0123456789", 10, &took));
  read_all(loop, &c, buf, 1);
  ASSERT_OK(weft_stream_wait(c.s, WEFT_STREAM_READ, (int64_t)test_ms(5000),
                             on_ready, &c));
  c.waiting = 1;
  c.status = 1;
  while (c.waiting) weft_loop_run(loop, WEFT_RUN_ONCE);
  ASSERT_OK(c.status);
  ASSERT_EQ(weft_stream_read(c.s, buf, sizeof buf), 9);
  ASSERT(memcmp(buf, "123456789", 9) == 0);
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

/* Whether the kernel holds bytes for the stream's descriptor now. */
static int kernel_has_bytes(side *d) {
  struct pollfd p = {weft_stream_fd(d->s), POLLIN, 0};
  return poll(&p, 1, 0);
}

/* Waits (with a limit that only a failing test reaches) for d to be
 * readable, and returns the wait's status. */
static int wait_readable(weft_loop_t *loop, side *d) {
  ASSERT_OK(weft_stream_wait(d->s, WEFT_STREAM_READ, (int64_t)test_ms(5000),
                             on_ready, d));
  d->waiting = 1;
  while (d->waiting) weft_loop_run(loop, WEFT_RUN_ONCE);
  return d->status;
}

/* A client that writes as soon as its handshake ends sends its request in
 * the flight that ends the server's: the server's last handshake recv
 * takes both, so the request waits in OpenSSL while the socket shows
 * nothing, and is read all the same. */
static void tls_reads_a_request_sent_with_the_handshakes_end(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  char buf[64];
  size_t took;
  int rc = WEFT_EAGAIN, rs = WEFT_EAGAIN;
  ASSERT_OK(weft_loop_new(&loop));
  pair(loop, &c, &s);
  ASSERT_OK(weft_tls_start(c.s, ctls, "localhost"));
  ASSERT_OK(weft_tls_start(s.s, stls, NULL));
  /* The client steps first in each pass: it finishes and writes before
   * the server reads its Finished. */
  for (;;) {
    if (rc == WEFT_EAGAIN && !c.waiting &&
        (rc = weft_tls_handshake(c.s)) == 0) {
      ASSERT_OK(weft_stream_write(c.s, "GET /\n", 6, &took));
      ASSERT_EQ(took, 6);
    }
    if (!s.waiting) rs = weft_tls_handshake(s.s);
    if (rs != WEFT_EAGAIN) break;
    if (rc == WEFT_EAGAIN) want_read(&c);
    want_read(&s);
    weft_loop_run(loop, WEFT_RUN_ONCE);
  }
  ASSERT_OK(rc);
  ASSERT_OK(rs);
  ASSERT_EQ(kernel_has_bytes(&s), 0);
  ASSERT_EQ(weft_stream_pending(s.s), 1);
  ASSERT_OK(wait_readable(loop, &s));
  ASSERT_EQ(weft_stream_read(s.s, buf, sizeof buf), 6);
  ASSERT(memcmp(buf, "GET /\n", 6) == 0);
  ASSERT_EQ(weft_stream_pending(s.s), 0);
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

/* Records that came in one recv wait in OpenSSL, and a read takes one
 * record, or part of one: until the last byte is read, the stream says
 * it has more (weft_stream_pending) while the socket shows nothing.  Once
 * all is read, a read wait is the descriptor's again: it ends when the
 * peer writes, not before. */
static void tls_pending_sees_records_read_ahead(void) {
  enum { BIG = 8000 };
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  char buf[BIG], big[BIG];
  size_t took;
  int i;
  ASSERT_OK(weft_loop_new(&loop));
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  for (i = 0; i < BIG; i++) big[i] = (char)('a' + i % 26);
  /* Three records of a line each, then one big record. */
  for (i = 0; i < 3; i++) {
    char line[2] = {(char)('1' + i), '\n'};
    ASSERT_OK(weft_stream_write(s.s, line, 2, &took));
    ASSERT_EQ(took, 2);
  }
  ASSERT_OK(weft_stream_write(s.s, big, BIG, &took));
  ASSERT_EQ(took, BIG);
  read_all(loop, &c, buf, 2);
  ASSERT(memcmp(buf, "1\n", 2) == 0);
  ASSERT_EQ(kernel_has_bytes(&c), 0); /* OpenSSL took it all */
  for (i = 1; i < 3; i++) {
    ASSERT_EQ(weft_stream_pending(c.s), 1);
    ASSERT_EQ(weft_stream_read(c.s, buf, sizeof buf), 2);
    ASSERT_EQ(buf[0], '1' + i);
  }
  /* The big record in small reads: OpenSSL keeps the rest decrypted. */
  for (i = 0; i < BIG; i += 100) {
    ASSERT_EQ(weft_stream_pending(c.s), 1);
    ASSERT_EQ(weft_stream_read(c.s, buf + i, 100), 100);
  }
  ASSERT(memcmp(buf, big, BIG) == 0);
  ASSERT_EQ(weft_stream_pending(c.s), 0);
  ASSERT_OK(weft_stream_wait(c.s, WEFT_STREAM_READ, -1, on_ready, &c));
  c.waiting = 1;
  ASSERT_GE(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
  ASSERT_GE(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
  ASSERT_EQ(c.waiting, 1);
  ASSERT_OK(weft_stream_write(s.s, "4\n", 2, &took));
  while (c.waiting) weft_loop_run(loop, WEFT_RUN_ONCE);
  ASSERT_OK(c.status);
  ASSERT_EQ(weft_stream_read(c.s, buf, sizeof buf), 2);
  ASSERT_EQ(buf[0], '4');
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

/* close_notify goes out while records wait unread in OpenSSL: a
 * half-close leaves them readable, and a close still tells the peer a
 * clean end (not a truncation, not a reset). */
static void tls_ends_cleanly_with_records_held(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  char buf[2];
  size_t took;
  int i, round;
  ASSERT_OK(weft_loop_new(&loop));
  for (round = 0; round < 2; round++) {
    connect_pair(loop, ctls, stls, "localhost", &c, &s);
    for (i = 0; i < 3; i++) {
      char line[2] = {(char)('1' + i), '\n'};
      ASSERT_OK(weft_stream_write(s.s, line, 2, &took));
    }
    read_all(loop, &c, buf, 2);
    ASSERT_EQ(weft_stream_pending(c.s), 1);
    if (round == 0) {
      ASSERT_OK(weft_stream_shutdown(c.s));
      ASSERT_EQ(read_end(loop, &s), 0);
      for (i = 1; i < 3; i++) {
        ASSERT_EQ(weft_stream_read(c.s, buf, sizeof buf), 2);
        ASSERT_EQ(buf[0], '1' + i);
      }
      close_pair(loop, &c, &s);
    } else {
      ASSERT_OK(weft_stream_close(c.s));
      ASSERT_EQ(read_end(loop, &s), 0);
      ASSERT_OK(weft_stream_close(s.s));
      ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
    }
  }
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

static void tls_tells_close_notify_from_truncation(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  ASSERT_OK(weft_loop_new(&loop));
  /* Closing sends close_notify: a clean end of file. */
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  ASSERT_OK(weft_stream_close(s.s));
  ASSERT_EQ(read_end(loop, &c), 0);
  ASSERT_EQ(weft_stream_read(c.s, NULL, 0), 0);
  ASSERT_OK(weft_stream_close(c.s));
  /* A half-close of the socket under TLS: a truncation. */
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  ASSERT_OK(shutdown(weft_stream_fd(s.s), SHUT_WR));
  ASSERT_EQ(read_end(loop, &c), WEFT_ETRUNCATED);
  ASSERT_STR_EQ(weft_tls_reason(c.s), "unexpected eof while reading");
  ASSERT_STR_EQ(weft_err_name(WEFT_ETRUNCATED), "ETRUNCATED");
  /* weft_stream_shutdown sends close_notify, then half-closes: the peer
   * reads a clean end, and can still answer. */
  close_pair(loop, &c, &s);
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  ASSERT_OK(weft_stream_shutdown(c.s));
  ASSERT_EQ(read_end(loop, &s), 0);
  {
    size_t took;
    char buf[3];
    ASSERT_OK(weft_stream_write(s.s, "bye", 3, &took));
    ASSERT_EQ(took, 3);
    read_all(loop, &c, buf, 3);
    ASSERT(memcmp(buf, "bye", 3) == 0);
  }
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

static void tls_client_resumes_its_session(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  char buf[8];
  size_t took;
  int i;
  ASSERT_OK(weft_loop_new(&loop));
  for (i = 0; i < 2; i++) {
    connect_pair(loop, ctls, stls, "localhost", &c, &s);
    ASSERT_GT(weft_tls_get(c.s, WEFT_TLS_RESUMED, buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, i == 0 ? "0" : "1");
    ASSERT_GT(weft_tls_get(s.s, WEFT_TLS_RESUMED, buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, i == 0 ? "0" : "1");
    /* (TLS 1.3 sends the session after the handshake: the client takes
     * it as it reads) */
    ASSERT_OK(weft_stream_write(s.s, "x", 1, &took));
    read_all(loop, &c, buf, 1);
    close_pair(loop, &c, &s);
  }
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

static void tls_server_can_require_client_certificates(void) {
  weft_loop_t *loop;
  weft_tls_t *stls = server_config("server"), *ctls = client_config();
  side c, s;
  char buf[128];
  int rc, rs;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_tls_set_client_ca(stls, cert("ca.pem")));
  /* Without one: refused (TLS 1.3 clients learn it on their first read). */
  pair(loop, &c, &s);
  ASSERT_OK(weft_tls_start(c.s, ctls, "localhost"));
  ASSERT_OK(weft_tls_start(s.s, stls, NULL));
  handshake(loop, &c, &s, &rc, &rs);
  ASSERT_EQ(rs, WEFT_ETLS);
  ASSERT_STR_EQ(weft_tls_reason(s.s), "peer did not return a certificate");
  ASSERT_EQ(rc == 0 ? read_end(loop, &c) : rc, WEFT_ETLS);
  ASSERT_STR_EQ(weft_tls_reason(c.s), "tlsv13 alert certificate required");
  close_pair(loop, &c, &s);
  /* With one. */
  ASSERT_OK(weft_tls_set_cert(ctls, cert("client.pem"), cert("client.key")));
  connect_pair(loop, ctls, stls, "localhost", &c, &s);
  ASSERT_GT(weft_tls_get(s.s, WEFT_TLS_PEER_SUBJECT, buf, sizeof buf), 0);
  ASSERT_STR_EQ(buf, "O=weft test,CN=weft client");
  close_pair(loop, &c, &s);
  weft_tls_free(stls);
  weft_tls_free(ctls);
  test_free_loop(loop);
}

TEST_MAIN(T(tls_rejects_bad_input) T(tls_exchanges_and_describes)
              T(tls_refuses_bad_certificates)
                  T(tls_without_verification_accepts_any)
                      T(tls_moves_a_megabyte_each_way)
                          T(tls_wait_sees_bytes_openssl_holds)
                          T(tls_reads_a_request_sent_with_the_handshakes_end)
                          T(tls_pending_sees_records_read_ahead)
                          T(tls_ends_cleanly_with_records_held)
                          T(tls_tells_close_notify_from_truncation)
                              T(tls_client_resumes_its_session)
                                  T(tls_server_can_require_client_certificates))
