/* tls.h: what tls.c (configurations, connections) and tls_info.c (what a
 * connection tells about itself) share.  Private to the core; OpenSSL's
 * types never reach weft.h. */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include "internal.h"

#include <openssl/ssl.h>

#define WEFT__TLS_CACHE 64 /* client sessions kept per configuration */

struct weft_tls_s {
  SSL_CTX *ctx;
  int role;         /* WEFT_TLS_CLIENT or WEFT_TLS_SERVER */
  int refs;         /* the creator's, and one per stream using it */
  int verify;       /* a client verifies its peer */
  int trust_loaded; /* a client's trust store is in place */
  int has_cert;
  unsigned char *alpn; /* a server's protocols, in the wire format */
  unsigned alpn_len;
  struct {
    char *key;
    SSL_SESSION *sess;
  } cache[WEFT__TLS_CACHE]; /* a client's sessions, by name and address */
  int ncache, evict;
  char err[320]; /* weft_tls_error */
};

enum {
  WEFT__TLS_HANDSHAKE, /* until weft_tls_handshake returns 0 */
  WEFT__TLS_OPEN,
  WEFT__TLS_PEER_DONE /* the peer's close_notify came: reads say EOF */
};

/* One TLS stream: the transport data stream.c holds. */
typedef struct weft__tls_conn {
  weft_stream_t *s;
  weft_tls_t *tls;
  SSL *ssl;
  int state;
  int err;       /* a failure: every later call returns it */
  int want_read; /* OpenSSL's last call waited for more from the peer */
  int eof;       /* the descriptor reached end of file */
  int syserr;    /* the socket error the BIO met */
  int shut;      /* close_notify sent */
  char *pre;     /* STARTTLS: bytes read before TLS started, not yet fed */
  size_t npre, ppre;
  char *key; /* a client's session key */
  char reason[256];
} weft__tls_conn;

extern const weft__transport weft__tls_transport;

/* Drops one reference to tls, freeing it with the last. */
void weft__tls_unref(weft_tls_t *tls);

#endif /* WEFT_TLS_H */
