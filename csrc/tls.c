/* tls.c: TLS over OpenSSL as a stream transport, and its configurations.
 *
 * A TLS stream is an ordinary weft_stream_t whose transport (stream.c's
 * hook) is a connection here: the stream's read buffer receives decrypted
 * bytes from SSL_read, its writes go through SSL_write, and OpenSSL moves
 * the encrypted bytes through a BIO of our own over the stream's
 * descriptor and write queue.  That BIO never asks OpenSSL to retry a
 * write: what the kernel does not take goes to the stream's queue, which
 * flushes itself.  So OpenSSL only ever waits to read, and every wait,
 * the handshake's too, is the stream's WEFT_STREAM_READ wait; the queue's
 * limit keeps its meaning because a write encrypts no more than the room
 * the queue has left.  OpenSSL reads ahead (one recv fills its record
 * buffer): what it holds beyond what a read took makes the stream ready
 * without the descriptor (conn_readable, weft_stream_pending), and after
 * a read that left its buffer empty the next waits for readiness, as
 * plain streams do. */
#include "internal.h"
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#define CACHE_MAX WEFT__TLS_CACHE

/* ---- configurations ------------------------------------------------------ */

static void set_error(weft_tls_t *tls, const char *what, const char *file,
                      const char *reason) {
  snprintf(tls->err, sizeof tls->err, "%s '%s': %s", what, file, reason);
}

/* OpenSSL's words for the newest error in its queue (which it clears). */
static const char *ssl_words(void) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "TLS failure";
}

/* Checks that path can be opened for reading; on failure records why
 * (naming it as what) and returns the code. */
static int readable_file(weft_tls_t *tls, const char *what, const char *path) {
  FILE *f = fopen(path, "r");
  int err;
  if (f) {
    fclose(f);
    return 0;
  }
  err = weft__err_from_errno(errno);
  set_error(tls, what, path, weft_strerror(err));
  return err;
}

/* Loads the system's trust store the first time a client needs it: a
 * configuration given its own CAs never parses it. */
static int need_trust(weft_tls_t *tls) {
  if (tls->trust_loaded) return 0;
  if (SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
    snprintf(tls->err, sizeof tls->err, "system trust store: %s", ssl_words());
    return WEFT_ETLS;
  }
  tls->trust_loaded = 1;
  return 0;
}

/* Keeps a client's new session under the connection's key (OpenSSL's
 * callback; returning 1 keeps the reference it hands over). */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  weft__tls_conn *c = SSL_get_app_data(ssl);
  weft_tls_t *tls = c ? c->tls : NULL;
  int i;
  if (!tls || !c->key) return 0;
  for (i = 0; i < tls->ncache; i++)
    if (!strcmp(tls->cache[i].key, c->key)) break;
  if (i == tls->ncache) {
    char *key = weft__malloc(strlen(c->key) + 1);
    if (!key) return 0;
    strcpy(key, c->key);
    if (tls->ncache < CACHE_MAX) {
      tls->ncache++;
    } else { /* full: the oldest goes */
      i = tls->evict;
      tls->evict = (tls->evict + 1) % CACHE_MAX;
      weft__free(tls->cache[i].key);
      SSL_SESSION_free(tls->cache[i].sess);
    }
    tls->cache[i].key = key;
  } else {
    SSL_SESSION_free(tls->cache[i].sess);
  }
  tls->cache[i].sess = sess;
  return 1;
}

static SSL_SESSION *cached_session(weft_tls_t *tls, const char *key) {
  int i;
  for (i = 0; i < tls->ncache; i++)
    if (!strcmp(tls->cache[i].key, key)) return tls->cache[i].sess;
  return NULL;
}

/* A server picks the first of its protocols that the client offers, and
 * goes on without ALPN when none matches. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
  weft_tls_t *tls = arg;
  unsigned char *sel;
  (void)ssl;
  if (SSL_select_next_proto(&sel, outlen, tls->alpn, tls->alpn_len, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

int weft_tls_new(int role, weft_tls_t **out) {
  weft_tls_t *tls;
  SSL_CTX *ctx;
  if (!out || (role != WEFT_TLS_CLIENT && role != WEFT_TLS_SERVER))
    return WEFT_EINVAL;
  *out = NULL;
  tls = weft__calloc(1, sizeof *tls);
  if (!tls) return WEFT_ENOMEM;
  ctx = SSL_CTX_new(role == WEFT_TLS_SERVER ? TLS_server_method()
                                            : TLS_client_method());
  if (!ctx) {
    weft__free(tls);
    ERR_clear_error();
    return WEFT_ENOMEM;
  }
  tls->ctx = ctx;
  tls->role = role;
  tls->refs = 1;
  SSL_CTX_set_app_data(ctx, tls);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  /* Idle connections give their record buffers back (nginx does the
   * same): a thousand idle TLS streams would otherwise hold 70 MiB. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1);
  if (role == WEFT_TLS_CLIENT) {
    tls->verify = 1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(
        ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  } else {
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"weft", 4);
  }
  *out = tls;
  return 0;
}

void weft__tls_unref(weft_tls_t *tls) {
  int i;
  if (!tls || --tls->refs > 0) return;
  for (i = 0; i < tls->ncache; i++) {
    weft__free(tls->cache[i].key);
    SSL_SESSION_free(tls->cache[i].sess);
  }
  SSL_CTX_free(tls->ctx);
  weft__free(tls->alpn);
  weft__free(tls);
}

void weft_tls_free(weft_tls_t *tls) { weft__tls_unref(tls); }

int weft_tls_set_verify(weft_tls_t *tls, int on) {
  if (!tls || tls->role != WEFT_TLS_CLIENT) return WEFT_EINVAL;
  tls->verify = on != 0;
  SSL_CTX_set_verify(tls->ctx, on ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  return 0;
}

int weft_tls_set_ca(weft_tls_t *tls, const char *cafile, const char *capath) {
  X509_STORE *store;
  int err;
  if (!tls || (!cafile && !capath)) return WEFT_EINVAL;
  tls->err[0] = '\0';
  if (cafile && (err = readable_file(tls, "cafile", cafile))) return err;
  if (capath && (err = readable_file(tls, "capath", capath))) return err;
  /* A store of its own replaces the system's (never loaded, or dropped). */
  store = X509_STORE_new();
  if (!store) return WEFT_ENOMEM;
  if (cafile && X509_STORE_load_file(store, cafile) != 1) {
    set_error(tls, "cafile", cafile, ssl_words());
    X509_STORE_free(store);
    return WEFT_ETLS;
  }
  if (capath && X509_STORE_load_path(store, capath) != 1) {
    set_error(tls, "capath", capath, ssl_words());
    X509_STORE_free(store);
    return WEFT_ETLS;
  }
  SSL_CTX_set_cert_store(tls->ctx, store);
  tls->trust_loaded = 1;
  return 0;
}

int weft_tls_set_cert(weft_tls_t *tls, const char *certfile,
                      const char *keyfile) {
  int err;
  if (!tls || !certfile) return WEFT_EINVAL;
  tls->err[0] = '\0';
  if (!keyfile) keyfile = certfile;
  if ((err = readable_file(tls, "cert", certfile)) ||
      (err = readable_file(tls, "key", keyfile)))
    return err;
  if (SSL_CTX_use_certificate_chain_file(tls->ctx, certfile) != 1) {
    set_error(tls, "cert", certfile, ssl_words());
    return WEFT_ETLS;
  }
  if (SSL_CTX_use_PrivateKey_file(tls->ctx, keyfile, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(tls->ctx) != 1) {
    set_error(tls, "key", keyfile, ssl_words());
    return WEFT_ETLS;
  }
  tls->has_cert = 1;
  return 0;
}

int weft_tls_set_client_ca(weft_tls_t *tls, const char *cafile) {
  STACK_OF(X509_NAME) *names;
  int err;
  if (!tls || !cafile || tls->role != WEFT_TLS_SERVER) return WEFT_EINVAL;
  tls->err[0] = '\0';
  if ((err = readable_file(tls, "client_cafile", cafile))) return err;
  names = SSL_load_client_CA_file(cafile);
  if (!names || SSL_CTX_load_verify_locations(tls->ctx, cafile, NULL) != 1) {
    set_error(tls, "client_cafile", cafile, ssl_words());
    if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
    return WEFT_ETLS;
  }
  SSL_CTX_set_client_CA_list(tls->ctx, names);
  SSL_CTX_set_verify(tls->ctx,
                     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  return 0;
}

int weft_tls_set_alpn(weft_tls_t *tls, const char *const *protocols,
                      size_t count) {
  size_t i, len = 0, n;
  unsigned char *wire, *p;
  if (!tls || !protocols || count == 0) return WEFT_EINVAL;
  for (i = 0; i < count; i++) {
    if (!protocols[i] || (n = strlen(protocols[i])) == 0 || n > 255)
      return WEFT_EINVAL;
    len += 1 + n;
  }
  if (len > 65535) return WEFT_EINVAL;
  p = wire = weft__malloc(len);
  if (!wire) return WEFT_ENOMEM;
  for (i = 0; i < count; i++) { /* the wire format: length-prefixed */
    n = strlen(protocols[i]);
    *p++ = (unsigned char)n;
    memcpy(p, protocols[i], n);
    p += n;
  }
  if (tls->role == WEFT_TLS_CLIENT) {
    int bad = SSL_CTX_set_alpn_protos(tls->ctx, wire, (unsigned)len) != 0;
    weft__free(wire);
    return bad ? WEFT_ENOMEM : 0;
  }
  weft__free(tls->alpn);
  tls->alpn = wire;
  tls->alpn_len = (unsigned)len;
  SSL_CTX_set_alpn_select_cb(tls->ctx, on_alpn, tls);
  return 0;
}

int weft_tls_set_min_version(weft_tls_t *tls, int version) {
  if (!tls || (version != WEFT_TLS_1_2 && version != WEFT_TLS_1_3))
    return WEFT_EINVAL;
  SSL_CTX_set_min_proto_version(tls->ctx, version);
  return 0;
}

int weft_tls_set_ciphers(weft_tls_t *tls, const char *ciphers) {
  /* OpenSSL keeps TLS 1.3 suites (TLS_*) and older ciphers in two lists:
   * each part given replaces its own list. */
  char v12[1024], v13[1024];
  size_t n12 = 0, n13 = 0;
  const char *p;
  if (!tls || !ciphers || !*ciphers || strlen(ciphers) >= sizeof v12)
    return WEFT_EINVAL;
  tls->err[0] = '\0';
  for (p = ciphers; *p;) {
    size_t n = strcspn(p, ":");
    int is13 = !strncmp(p, "TLS_", 4);
    char *dst = is13 ? v13 : v12;
    size_t *len = is13 ? &n13 : &n12;
    if (n) {
      if (*len) dst[(*len)++] = ':';
      memcpy(dst + *len, p, n);
      *len += n;
    }
    p += n;
    if (*p) p++;
  }
  v12[n12] = v13[n13] = '\0';
  if ((n12 && SSL_CTX_set_cipher_list(tls->ctx, v12) != 1) ||
      (n13 && SSL_CTX_set_ciphersuites(tls->ctx, v13) != 1) ||
      (!n12 && !n13)) {
    set_error(tls, "ciphers", ciphers, n12 || n13 ? ssl_words() : "empty");
    return WEFT_ETLS;
  }
  return 0;
}

const char *weft_tls_error(const weft_tls_t *tls) {
  return tls ? tls->err : "";
}

/* ---- the BIO over a stream ------------------------------------------------ */

static int bio_read(BIO *b, char *out, int len) {
  weft__tls_conn *c = BIO_get_data(b);
  int r;
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  if (c->pre) { /* bytes the stream had read before TLS started */
    size_t n = c->npre - c->ppre;
    if (n > (size_t)len) n = (size_t)len;
    memcpy(out, c->pre + c->ppre, n);
    c->ppre += n;
    if (c->ppre == c->npre) {
      weft__free(c->pre);
      c->pre = NULL;
    }
    return (int)n;
  }
  r = weft__stream_recv(c->s, out, (size_t)len);
  if (r > 0) return r;
  if (r == 0) {
    c->eof = 1;
    return 0;
  }
  if (r == WEFT_EAGAIN) {
    BIO_set_retry_read(b);
    return -1;
  }
  c->syserr = r;
  return -1;
}

static int bio_write(BIO *b, const char *in, int len) {
  weft__tls_conn *c = BIO_get_data(b);
  int err;
  BIO_clear_retry_flags(b);
  err = weft__stream_send(c->s, in, (size_t)len);
  if (err) {
    c->syserr = err;
    return -1;
  }
  return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  weft__tls_conn *c = BIO_get_data(b);
  (void)num, (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1; /* the stream's queue flushes itself */
  case BIO_CTRL_EOF: /* OpenSSL tells a truncation from this */
    return c && c->eof;
  default:
    return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* Made once, freed when the library is unloaded (a Lua state that
 * required weft closes: its module, and libweft, may go with it). */
__attribute__((destructor)) static void free_bio_method(void) {
  BIO_meth_free(bio_method);
  bio_method = NULL;
}

static void make_bio_method(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft stream");
  if (m && BIO_meth_set_read(m, bio_read) && BIO_meth_set_write(m, bio_write) &&
      BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
    bio_method = m;
  else if (m)
    BIO_meth_free(m);
}

/* ---- connections ---------------------------------------------------------- */

/* Records how an OpenSSL call that returned r failed and returns the
 * code: WEFT_EAGAIN to wait for the descriptor, else a failure that
 * stays (every later call returns it). */
static int failed(weft__tls_conn *c, int r) {
  int e = SSL_get_error(c->ssl, r), code;
  unsigned long ec;
  const char *words = NULL;
  char buf[200];
  if (e == SSL_ERROR_WANT_READ) {
    c->want_read = 1;
    return WEFT_EAGAIN;
  }
  ec = ERR_peek_last_error();
  if (c->syserr) { /* the socket itself failed */
    code = c->syserr;
    words = weft_strerror(code);
  } else if (ERR_GET_LIB(ec) == ERR_LIB_SSL &&
             ERR_GET_REASON(ec) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long v = SSL_get_verify_result(c->ssl);
    snprintf(buf, sizeof buf, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
    code = WEFT_ECERT;
    words = buf;
  } else if (e == SSL_ERROR_SYSCALL ||
             (ERR_GET_LIB(ec) == ERR_LIB_SSL &&
              ERR_GET_REASON(ec) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    /* The peer closed without close_notify: in the handshake a failure
     * like any other, afterwards a truncation (no clean end of file). */
    code = c->state == WEFT__TLS_HANDSHAKE ? WEFT_ETLS : WEFT_ETRUNCATED;
    words = "unexpected eof while reading";
  } else {
    code = WEFT_ETLS;
    words = ec ? ERR_reason_error_string(ec) : NULL;
    if (!words) words = e == SSL_ERROR_WANT_WRITE ? "write would block"
                                                  : "TLS failure";
  }
  ERR_clear_error();
  snprintf(c->reason, sizeof c->reason, "%s", words);
  c->err = code;
  return code;
}

static int conn_read(void *data, void *buf, size_t len) {
  weft__tls_conn *c = data;
  int r;
  if (c->err) return c->err;
  if (c->state == WEFT__TLS_HANDSHAKE) return WEFT_ENOTCONN;
  if (c->state == WEFT__TLS_PEER_DONE) return 0;
  ERR_clear_error();
  r = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
  if (r > 0) {
    c->want_read = 0;
    return r;
  }
  if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
    c->state = WEFT__TLS_PEER_DONE; /* close_notify: a clean end */
    return 0;
  }
  return failed(c, r);
}

static int conn_write(void *data, const void *buf, size_t len,
                      size_t *accepted) {
  weft__tls_conn *c = data;
  size_t n = weft__stream_room(c->s);
  int r;
  *accepted = 0;
  if (c->err) return c->err;
  if (c->state == WEFT__TLS_HANDSHAKE) return WEFT_ENOTCONN;
  if (c->shut) return WEFT_EPIPE;
  /* Encrypt no more than the queue has room for (the records' overhead
   * may pass its limit by a few bytes a record). */
  if (n > len) n = len;
  if (n > INT_MAX) n = INT_MAX;
  if (n == 0) return 0;
  ERR_clear_error();
  r = SSL_write(c->ssl, buf, (int)n);
  if (r > 0) {
    *accepted = (size_t)r;
    return 0;
  }
  r = failed(c, r);
  if (r == WEFT_EAGAIN) { /* a write never waits to read: renegotiation is
                             refused, and TLS 1.3 has none */
    c->want_read = 0;
    r = c->err = WEFT_ETLS;
    snprintf(c->reason, sizeof c->reason, "write wants to read");
  }
  return r;
}

/* Whether a read (or the handshake) can go on without the descriptor.
 * OpenSSL reads ahead: one recv may bring the handshake's end with the
 * request after it, or many records, and a read takes one record (or
 * part of one), so the rest waits in OpenSSL while the socket shows
 * nothing.  Once OpenSSL said it wants more, what it holds is part of a
 * record, which only the descriptor can complete; until it did, any byte
 * it holds (SSL_has_pending: decrypted or not) may be a record. */
static int conn_readable(void *data) {
  weft__tls_conn *c = data;
  if (c->err || c->state == WEFT__TLS_PEER_DONE) return 1; /* known now */
  if (c->want_read) return 0;
  if (c->state == WEFT__TLS_HANDSHAKE || c->pre) return 1;
  return SSL_has_pending(c->ssl);
}

/* Sends close_notify (once, after a completed handshake). */
static int conn_shutdown(void *data) {
  weft__tls_conn *c = data;
  int r;
  if (c->shut || c->err || c->state == WEFT__TLS_HANDSHAKE) return c->err;
  c->shut = 1;
  ERR_clear_error();
  r = SSL_shutdown(c->ssl);
  if (r < 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
    return failed(c, r);
  ERR_clear_error();
  return 0;
}

static void conn_close(void *data) {
  weft__tls_conn *c = data;
  conn_shutdown(c);
  SSL_free(c->ssl);
  ERR_clear_error();
  weft__tls_unref(c->tls);
  weft__free(c->pre);
  weft__free(c->key);
  weft__free(c);
}

const weft__transport weft__tls_transport = {conn_read, conn_write,
                                             conn_readable, conn_shutdown,
                                             conn_close};

/* The client's session key: the name and the peer's address, so that a
 * session goes back only to the server that gave it. */
static char *session_key(weft_stream_t *s, const char *servername) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char addr[INET6_ADDRSTRLEN] = "", *key;
  int port = 0;
  size_t n;
  if (getpeername(weft_stream_fd(s), (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
      port = ntohs(a->sin6_port);
    }
  }
  n = strlen(servername ? servername : "") + strlen(addr) + 16;
  key = weft__malloc(n);
  if (key) snprintf(key, n, "%s@%s:%d", servername ? servername : "", addr, port);
  return key;
}

static int is_ip(const char *name) {
  unsigned char b[16];
  return inet_pton(AF_INET, name, b) == 1 || inet_pton(AF_INET6, name, b) == 1;
}

/* Names the server the client expects: SNI, and the name checked. */
static int set_peer_name(weft__tls_conn *c, const char *name) {
  SSL *ssl = c->ssl;
  if (is_ip(name)) { /* no SNI for an address; check it against IP SANs */
    if (c->tls->verify &&
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
      return WEFT_EINVAL;
    return 0;
  }
  if (SSL_set_tlsext_host_name(ssl, name) != 1) return WEFT_EINVAL;
  if (c->tls->verify && SSL_set1_host(ssl, name) != 1) return WEFT_EINVAL;
  return 0;
}

int weft_tls_start(weft_stream_t *s, weft_tls_t *tls, const char *servername) {
  weft__tls_conn *c;
  const char *buffered;
  size_t n;
  int err;
  if (!s || !tls) return WEFT_EINVAL;
  if (weft_stream_fd(s) < 0) return WEFT_ECLOSED;
  if (weft__stream_transport(s, &weft__tls_transport)) return WEFT_EINVAL;
  if (tls->role == WEFT_TLS_SERVER ? !tls->has_cert
                                   : !servername && tls->verify)
    return WEFT_EINVAL;
  pthread_once(&bio_once, make_bio_method);
  if (!bio_method) return WEFT_ENOMEM;
  if (tls->role == WEFT_TLS_CLIENT && tls->verify && (err = need_trust(tls)))
    return err;
  c = weft__calloc(1, sizeof *c);
  if (!c) return WEFT_ENOMEM;
  c->s = s;
  c->tls = tls;
  c->ssl = SSL_new(tls->ctx);
  if (!c->ssl) goto nomem;
  {
    BIO *bio = BIO_new(bio_method);
    if (!bio) goto nomem;
    BIO_set_data(bio, c);
    SSL_set_bio(c->ssl, bio, bio);
  }
  SSL_set_app_data(c->ssl, c);
  if (tls->role == WEFT_TLS_SERVER) {
    SSL_set_accept_state(c->ssl);
  } else {
    SSL_SESSION *sess;
    SSL_set_connect_state(c->ssl);
    if (servername && (err = set_peer_name(c, servername))) goto fail;
    c->key = session_key(s, servername);
    if (!c->key) goto nomem;
    if ((sess = cached_session(tls, c->key))) SSL_set_session(c->ssl, sess);
  }
  /* STARTTLS: what the stream already read came after the plain part. */
  buffered = weft_stream_buffered(s, &n);
  if (n) {
    c->pre = weft__malloc(n);
    if (!c->pre) goto nomem;
    memcpy(c->pre, buffered, n);
    c->npre = n;
    weft_stream_consume(s, n);
  }
  tls->refs++;
  weft__stream_set_transport(s, &weft__tls_transport, c);
  return 0;
nomem:
  err = WEFT_ENOMEM;
fail:
  SSL_free(c->ssl);
  ERR_clear_error();
  weft__free(c->key);
  weft__free(c);
  return err;
}

int weft_tls_handshake(weft_stream_t *s) {
  weft__tls_conn *c = weft__stream_transport(s, &weft__tls_transport);
  int r;
  if (!c) return s && weft_stream_fd(s) == WEFT_ECLOSED ? WEFT_ECLOSED
                                                         : WEFT_EINVAL;
  if (c->err) return c->err;
  if (c->state != WEFT__TLS_HANDSHAKE) return 0;
  ERR_clear_error();
  r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->state = WEFT__TLS_OPEN;
    c->want_read = 0;
    return 0;
  }
  return failed(c, r);
}

const char *weft_tls_reason(const weft_stream_t *s) {
  weft__tls_conn *c = weft__stream_transport(s, &weft__tls_transport);
  return c && c->reason[0] ? c->reason : NULL;
}
