/* tls.c: the C half of weft.tls: TLS configurations as userdata, and the
 * primitives tls.lua builds on (start TLS on a stream handle, drive its
 * handshake, describe it).  The streams stay stream.c's handles: a TLS
 * stream is the same object with a TLS transport in the core. */
#include "lweft.h"

#include <stdlib.h>
#include <string.h>

#define CONFIG_MT "weft.tls_config"


static weft_tls_t **check_config(lua_State *L, int idx) {
  weft_tls_t **c = luaL_checkudata(L, idx, CONFIG_MT);
  if (!*c) luaL_argerror(L, idx, "released TLS configuration");
  return c;
}

static int config_gc(lua_State *L) {
  weft_tls_t **c = luaL_checkudata(L, 1, CONFIG_MT);
  weft_tls_free(*c);
  *c = NULL;
  return 0;
}

/* The string field name of the table at idx, or NULL. */
static const char *opt_string(lua_State *L, int idx, const char *name) {
  const char *s;
  lua_getfield(L, idx, name);
  s = lua_tostring(L, -1); /* (the table keeps it) */
  lua_pop(L, 1);
  return s;
}

/* Sets the ALPN list at opts.alpn, if any. */
static int set_alpn(lua_State *L, weft_tls_t *tls, int opts) {
  const char *names[64];
  lua_Integer i, n;
  if (lua_getfield(L, opts, "alpn") != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  n = luaL_len(L, -1);
  if (n > 64) n = 64; /* (tls.lua allows no more) */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    names[i - 1] = lua_tostring(L, -1); /* (the list keeps it) */
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n ? weft_tls_set_alpn(tls, names, (size_t)n) : 0;
}

/* config(role, opts) -> a configuration, or nil, message, code.  opts
 * was checked by tls.lua: known fields, of the right types. */
static int lw_config(lua_State *L) {
  int server = !strcmp(luaL_checkstring(L, 1), "server"), err;
  const char *cafile, *capath, *cert, *s;
  weft_tls_t **c, *tls;
  luaL_checktype(L, 2, LUA_TTABLE);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  *c = NULL;
  luaL_setmetatable(L, CONFIG_MT);
  err = weft_tls_new(server ? WEFT_TLS_SERVER : WEFT_TLS_CLIENT, c);
  if (err) return lweft_push_fail(L, NULL, err);
  tls = *c;
  cafile = opt_string(L, 2, "cafile");
  capath = opt_string(L, 2, "capath");
  cert = opt_string(L, 2, "cert");
  lua_getfield(L, 2, "verify");
  if (!server && lua_isboolean(L, -1) && !lua_toboolean(L, -1))
    err = weft_tls_set_verify(tls, 0);
  lua_pop(L, 1);
  if (!err && (cafile || capath)) err = weft_tls_set_ca(tls, cafile, capath);
  if (!err && cert) err = weft_tls_set_cert(tls, cert, opt_string(L, 2, "key"));
  if (!err && (s = opt_string(L, 2, "client_cafile")))
    err = weft_tls_set_client_ca(tls, s);
  if (!err && (s = opt_string(L, 2, "min_version")) && !strcmp(s, "1.3"))
    err = weft_tls_set_min_version(tls, WEFT_TLS_1_3);
  if (!err && (s = opt_string(L, 2, "ciphers")))
    err = weft_tls_set_ciphers(tls, s);
  if (!err) err = set_alpn(L, tls, 2);
  if (err) {
    lweft_push_fail(L, weft_tls_error(tls), err);
    weft_tls_free(tls);
    *c = NULL;
    return 3;
  }
  return 1;
}

/* start(h, config, servername|nil) -> true, or nil, message, code */
static int lw_start(lua_State *L) {
  weft_stream_t *s = lweft_check_stream(L, 1);
  weft_tls_t **c = check_config(L, 2);
  int err = weft_tls_start(s, *c, luaL_optstring(L, 3, NULL));
  if (err) return lweft_push_fail(L, weft_tls_reason(s), err);
  lua_pushboolean(L, 1);
  return 1;
}

/* handshake(h) -> true when done, false to wait for readability, or nil,
 * message, code */
static int lw_handshake(lua_State *L) {
  weft_stream_t *s = lweft_check_stream(L, 1);
  int err = weft_tls_handshake(s);
  if (err == WEFT_EAGAIN) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (err) return lweft_push_fail(L, weft_tls_reason(s), err);
  lua_pushboolean(L, 1);
  return 1;
}

/* Pushes field of s as a string (nil when it has none); returns 1. */
static int push_field(lua_State *L, weft_stream_t *s, int field) {
  char small[256];
  int n = weft_tls_get(s, field, small, sizeof small);
  if (n < 0) {
    lua_pushnil(L);
  } else if ((size_t)n < sizeof small) {
    lua_pushlstring(L, small, (size_t)n);
  } else {
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)n + 1);
    weft_tls_get(s, field, p, (size_t)n + 1);
    luaL_pushresultsize(&b, (size_t)n);
  }
  return 1;
}

static void set_field(lua_State *L, weft_stream_t *s, int field,
                      const char *name) {
  push_field(L, s, field);
  lua_setfield(L, -2, name);
}

/* Sets t[name] to the integer of a decimal field. */
static void set_time(lua_State *L, weft_stream_t *s, int field,
                     const char *name) {
  char buf[32];
  if (weft_tls_get(s, field, buf, sizeof buf) > 0) {
    lua_pushinteger(L, (lua_Integer)strtoll(buf, NULL, 10));
    lua_setfield(L, -2, name);
  }
}

/* info(h) -> { version, cipher, alpn, servername, resumed } */
static int lw_info(lua_State *L) {
  weft_stream_t *s = lweft_check_stream(L, 1);
  char r[4];
  lua_createtable(L, 0, 5);
  set_field(L, s, WEFT_TLS_VERSION, "version");
  set_field(L, s, WEFT_TLS_CIPHER, "cipher");
  set_field(L, s, WEFT_TLS_ALPN, "alpn");
  set_field(L, s, WEFT_TLS_SERVERNAME, "servername");
  lua_pushboolean(L, weft_tls_get(s, WEFT_TLS_RESUMED, r, sizeof r) > 0 &&
                         r[0] == '1');
  lua_setfield(L, -2, "resumed");
  return 1;
}

/* alpn(h) -> the protocol agreed, or nil */
static int lw_alpn(lua_State *L) {
  return push_field(L, lweft_check_stream(L, 1), WEFT_TLS_ALPN);
}

/* peer_certificate(h) -> { subject, issuer, serial, not_before,
 * not_after, fingerprint, san = {...}, pem }, or nil without one */
static int lw_peer_certificate(lua_State *L) {
  weft_stream_t *s = lweft_check_stream(L, 1);
  char buf[4];
  const char *p, *nl;
  size_t len;
  int i = 0;
  if (weft_tls_get(s, WEFT_TLS_PEER_PEM, buf, sizeof buf) < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 8);
  set_field(L, s, WEFT_TLS_PEER_SUBJECT, "subject");
  set_field(L, s, WEFT_TLS_PEER_ISSUER, "issuer");
  set_field(L, s, WEFT_TLS_PEER_SERIAL, "serial");
  set_time(L, s, WEFT_TLS_PEER_NOT_BEFORE, "not_before");
  set_time(L, s, WEFT_TLS_PEER_NOT_AFTER, "not_after");
  set_field(L, s, WEFT_TLS_PEER_FINGERPRINT, "fingerprint");
  set_field(L, s, WEFT_TLS_PEER_PEM, "pem");
  lua_newtable(L);
  push_field(L, s, WEFT_TLS_PEER_SAN);
  p = lua_tolstring(L, -1, &len);
  while (p && len) {
    nl = memchr(p, '\n', len);
    lua_pushlstring(L, p, nl ? (size_t)(nl - p) : len);
    lua_rawseti(L, -3, ++i);
    if (!nl) break;
    len -= (size_t)(nl - p) + 1;
    p = nl + 1;
  }
  lua_pop(L, 1);
  lua_setfield(L, -2, "san");
  return 1;
}

void lweft_tls_prims(lua_State *L) {
  static const luaL_Reg prims[] = {
      {"tls_config", lw_config},       {"tls_start", lw_start},
      {"tls_handshake", lw_handshake}, {"tls_info", lw_info},
      {"tls_alpn", lw_alpn},           {"tls_peer_certificate", lw_peer_certificate},
      {NULL, NULL}};
  if (luaL_newmetatable(L, CONFIG_MT)) {
    lua_pushcfunction(L, config_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
}
