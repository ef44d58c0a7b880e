/* tls_info.c: weft_tls_get, what an established TLS stream tells about
 * itself and its peer's certificate, as text. */
#include "tls.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Copies n bytes of src into buf as a string, truncated to size; returns
 * n, as snprintf would. */
static int copy_out(const char *src, size_t n, char *buf, size_t size) {
  if (n > INT32_MAX) n = INT32_MAX;
  if (size) {
    size_t k = n < size - 1 ? n : size - 1;
    memcpy(buf, src, k);
    buf[k] = '\0';
  }
  return (int)n;
}

/* Copies what a memory BIO holds and frees it; WEFT_ENOMEM if the BIO is
 * NULL or the writing into it failed (ok == 0). */
static int copy_bio(BIO *b, int ok, char *buf, size_t size) {
  char *p;
  long n;
  int r = WEFT_ENOMEM;
  if (b && ok) {
    n = BIO_get_mem_data(b, &p);
    r = copy_out(p, n > 0 ? (size_t)n : 0, buf, size);
  }
  BIO_free(b);
  ERR_clear_error();
  return r;
}

static int copy_name(const X509_NAME *name, char *buf, size_t size) {
  BIO *b = BIO_new(BIO_s_mem());
  return copy_bio(b, b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0,
                  buf, size);
}

static int copy_time(const ASN1_TIME *t, char *buf, size_t size) {
  struct tm tm;
  char s[32];
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return WEFT_ENOENT;
  return copy_out(s, (size_t)snprintf(s, sizeof s, "%" PRId64,
                                      (int64_t)timegm(&tm)),
                  buf, size);
}

static int copy_serial(X509 *x, char *buf, size_t size) {
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  int r = hex ? copy_out(hex, strlen(hex), buf, size) : WEFT_ENOMEM;
  OPENSSL_free(hex);
  BN_free(bn);
  return r;
}

static int copy_fingerprint(X509 *x, char *buf, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0, i;
  char s[3 * EVP_MAX_MD_SIZE];
  if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n == 0) {
    ERR_clear_error();
    return WEFT_ENOMEM;
  }
  for (i = 0; i < n; i++) snprintf(s + 3 * i, 4, "%02X:", md[i]);
  return copy_out(s, 3 * n - 1, buf, size);
}

/* The DNS names and IP addresses among the subject alternative names,
 * one a line (a name holding a line break or a NUL is left out: no
 * hostname check would accept it either). */
static int copy_san(X509 *x, char *buf, size_t size) {
  GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  BIO *b;
  int i, ok = 1, any = 0;
  if (!names) {
    ERR_clear_error();
    return WEFT_ENOENT;
  }
  b = BIO_new(BIO_s_mem());
  for (i = 0; b && ok && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    char ip[INET6_ADDRSTRLEN];
    const char *v = NULL;
    int len = 0;
    if (g->type == GEN_DNS) {
      v = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
      len = ASN1_STRING_length(g->d.dNSName);
      if (memchr(v, '\n', (size_t)len) || memchr(v, '\0', (size_t)len))
        v = NULL;
    } else if (g->type == GEN_IPADD) {
      int n = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
      if ((n == 4 || n == 16) &&
          inet_ntop(n == 4 ? AF_INET : AF_INET6, a, ip, sizeof ip)) {
        v = ip;
        len = (int)strlen(ip);
      }
    }
    if (!v) continue;
    ok = (!any || BIO_write(b, "\n", 1) == 1) &&
         (len == 0 || BIO_write(b, v, len) == len);
    any = 1;
  }
  GENERAL_NAMES_free(names);
  if (b && ok && !any) {
    BIO_free(b);
    return WEFT_ENOENT;
  }
  return copy_bio(b, ok, buf, size);
}

static int copy_pem(X509 *x, char *buf, size_t size) {
  BIO *b = BIO_new(BIO_s_mem());
  return copy_bio(b, b && PEM_write_bio_X509(b, x) == 1, buf, size);
}

static int copy_str(const char *s, char *buf, size_t size) {
  return s ? copy_out(s, strlen(s), buf, size) : WEFT_ENOENT;
}

int weft_tls_get(const weft_stream_t *s, int field, char *buf, size_t size) {
  weft__tls_conn *c = weft__stream_transport(s, &weft__tls_transport);
  SSL *ssl;
  X509 *x;
  if (!c || (!buf && size) || field < WEFT_TLS_VERSION ||
      field > WEFT_TLS_PEER_PEM)
    return WEFT_EINVAL;
  if (c->state == WEFT__TLS_HANDSHAKE) return WEFT_ENOTCONN;
  ssl = c->ssl;
  switch (field) {
  case WEFT_TLS_VERSION:
    return copy_str(SSL_get_version(ssl), buf, size);
  case WEFT_TLS_CIPHER:
    return copy_str(SSL_get_cipher_name(ssl), buf, size);
  case WEFT_TLS_ALPN: {
    const unsigned char *p;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n ? copy_out((const char *)p, n, buf, size) : WEFT_ENOENT;
  }
  case WEFT_TLS_SERVERNAME:
    return copy_str(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), buf,
                    size);
  case WEFT_TLS_RESUMED:
    return copy_str(SSL_session_reused(ssl) ? "1" : "0", buf, size);
  }
  x = SSL_get0_peer_certificate(ssl);
  if (!x) return WEFT_ENOENT;
  switch (field) {
  case WEFT_TLS_PEER_SUBJECT:
    return copy_name(X509_get_subject_name(x), buf, size);
  case WEFT_TLS_PEER_ISSUER:
    return copy_name(X509_get_issuer_name(x), buf, size);
  case WEFT_TLS_PEER_SERIAL:
    return copy_serial(x, buf, size);
  case WEFT_TLS_PEER_NOT_BEFORE:
    return copy_time(X509_get0_notBefore(x), buf, size);
  case WEFT_TLS_PEER_NOT_AFTER:
    return copy_time(X509_get0_notAfter(x), buf, size);
  case WEFT_TLS_PEER_FINGERPRINT:
    return copy_fingerprint(x, buf, size);
  case WEFT_TLS_PEER_SAN:
    return copy_san(x, buf, size);
  default:
    return copy_pem(x, buf, size);
  }
}
