/* dns.c: getaddrinfo and getnameinfo on libuv's thread pool. */
#include "internal.h"

#include <netdb.h>

typedef struct gai_req {
  uv_getaddrinfo_t req;
  weft_loop_t *loop;
  weft_addrinfo_cb cb;
  void *data;
} gai_req;

typedef struct gni_req {
  uv_getnameinfo_t req;
  weft_loop_t *loop;
  weft_nameinfo_cb cb;
  void *data;
} gni_req;

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  gai_req *r = WEFT__CONTAINER(req, gai_req, req);
  weft_loop_t *loop = r->loop;
  weft_addrinfo_cb cb = r->cb;
  void *data = r->data;
  weft__free(r);
  loop->tasks--;
  if (status < 0) {
    uv_freeaddrinfo(res);
    res = NULL;
  }
  cb(loop, weft__err_from_uv(status), res, data);
}

int weft_getaddrinfo(weft_loop_t *loop, const char *node, const char *service,
                     const struct addrinfo *hints, weft_addrinfo_cb cb,
                     void *data) {
  gai_req *r;
  int err;
  if (!loop || !cb || (!node && !service)) return WEFT_EINVAL;
  r = weft__malloc(sizeof *r);
  if (!r) return WEFT_ENOMEM;
  r->loop = loop;
  r->cb = cb;
  r->data = data;
  err = uv_getaddrinfo(loop->uv, &r->req, on_gai, node, service, hints);
  if (err) {
    weft__free(r);
    return weft__err_from_uv(err);
  }
  loop->tasks++; /* weft_loop_free waits for it */
  return 0;
}

void weft_freeaddrinfo(struct addrinfo *res) { uv_freeaddrinfo(res); }

static void on_gni(uv_getnameinfo_t *req, int status, const char *host,
                   const char *service) {
  gni_req *r = WEFT__CONTAINER(req, gni_req, req);
  weft_loop_t *loop = r->loop;
  loop->tasks--;
  if (status < 0)
    r->cb(loop, weft__err_from_uv(status), NULL, NULL, r->data);
  else
    r->cb(loop, 0, host, service, r->data);
  weft__free(r);
}

int weft_getnameinfo(weft_loop_t *loop, const struct sockaddr *addr,
                     int flags, weft_nameinfo_cb cb, void *data) {
  gni_req *r;
  int err;
  if (!loop || !addr || !cb) return WEFT_EINVAL;
  r = weft__malloc(sizeof *r);
  if (!r) return WEFT_ENOMEM;
  r->loop = loop;
  r->cb = cb;
  r->data = data;
  err = uv_getnameinfo(loop->uv, &r->req, on_gni, addr, flags);
  if (err) {
    weft__free(r);
    return weft__err_from_uv(err);
  }
  loop->tasks++;
  return 0;
}
