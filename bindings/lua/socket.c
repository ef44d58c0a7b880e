/* socket.c: the descriptor-level primitives weft.socket needs beyond the
 * stream ones (stream.c): a socket made before it is bound or connected,
 * bind, listen and connect on it, LuaSocket's socket options by their
 * names, a shutdown by direction, and the wall clock.  socket.lua builds
 * LuaSocket's objects on these and on weft's stream handles; every wait
 * goes through the stream primitives (waitio). */
#include "lweft.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


static int push_true(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

/* sk_socket(family, socktype) -> fd (non-blocking, close-on-exec), or nil,
 * message, code */
static int lw_socket(lua_State *L) {
  const char *fam = luaL_checkstring(L, 1);
  const char *type = luaL_checkstring(L, 2);
  int fd = socket(strcmp(fam, "inet6") ? AF_INET : AF_INET6,
                  (strcmp(type, "dgram") ? SOCK_STREAM : SOCK_DGRAM) |
                      SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0) return lweft_push_fail(L, NULL, -errno);
  lua_pushinteger(L, fd);
  return 1;
}

/* sk_bind(fd, family, address, port) -> true, or nil, message, code */
static int lw_bind(lua_State *L) {
  struct sockaddr_storage ss;
  int fd = (int)luaL_checkinteger(L, 1);
  socklen_t len = lweft_sockaddr(L, 2, &ss);
  if (!len) return lweft_push_fail(L, NULL, -EINVAL);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0)
    return lweft_push_fail(L, NULL, -errno);
  return push_true(L);
}

/* sk_listen(fd, backlog) -> true, or nil, message, code */
static int lw_listen(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  if (listen(fd, (int)luaL_checkinteger(L, 2)) < 0)
    return lweft_push_fail(L, NULL, -errno);
  return push_true(L);
}

/* sk_connect(fd, family, address, port) -> true (connected), false (in
 * progress: wait until writable, then ask sockerr), or nil, message,
 * code.  Family "unspec" dissolves a datagram socket's association. */
static int lw_connect(lua_State *L) {
  struct sockaddr_storage ss;
  int fd = (int)luaL_checkinteger(L, 1), r;
  socklen_t len;
  if (!strcmp(luaL_checkstring(L, 2), "unspec")) {
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNSPEC;
    len = sizeof ss;
  } else if (!(len = lweft_sockaddr(L, 2, &ss))) {
    return lweft_push_fail(L, NULL, -EINVAL);
  }
  do r = connect(fd, (struct sockaddr *)&ss, len);
  while (r < 0 && errno == EINTR);
  if (r == 0) return push_true(L);
  if (errno == EINPROGRESS) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return lweft_push_fail(L, NULL, -errno);
}

/* sk_shutdown(fd, how): how is "receive" or "both" (a write shutdown goes
 * through the stream, after its queue) -> true, or nil, message, code */
static int lw_shutdown(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int how = strcmp(luaL_checkstring(L, 2), "both") ? SHUT_RD : SHUT_RDWR;
  if (shutdown(fd, how) < 0) return lweft_push_fail(L, NULL, -errno);
  return push_true(L);
}

/* sk_gettime() -> seconds since the epoch, with fractions */
static int lw_gettime(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* ---- options, by LuaSocket's names -------------------------------------- */

enum { OPT_BOOL, OPT_INT, OPT_LINGER };

static const struct {
  const char *name;
  int level, opt, kind;
} options[] = {
    {"broadcast", SOL_SOCKET, SO_BROADCAST, OPT_BOOL},
    {"dontroute", SOL_SOCKET, SO_DONTROUTE, OPT_BOOL},
    {"ip-multicast-loop", IPPROTO_IP, IP_MULTICAST_LOOP, OPT_BOOL},
    {"ip-multicast-ttl", IPPROTO_IP, IP_MULTICAST_TTL, OPT_INT},
    {"ipv6-unicast-hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, OPT_INT},
    {"ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, OPT_BOOL},
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, OPT_BOOL},
    {"linger", SOL_SOCKET, SO_LINGER, OPT_LINGER},
    {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, OPT_INT},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, OPT_BOOL},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, OPT_BOOL},
    {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, OPT_INT},
    {"tcp-keepcnt", IPPROTO_TCP, TCP_KEEPCNT, OPT_INT},
    {"tcp-keepidle", IPPROTO_TCP, TCP_KEEPIDLE, OPT_INT},
    {"tcp-keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, OPT_INT},
    {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, OPT_BOOL},
};

/* Raises "bad argument #n to 'fname' (msg)" at the caller of socket.lua's
 * method (argument numbers as the method sees them). */
static int arg_error(lua_State *L, int n, const char *fname, const char *msg) {
  return lweft_error(L, "bad argument #%d to '%s' (%s)", n, fname, msg);
}

/* The option named by argument 2 (raising, as argument 1 of fname, for an
 * unknown one). */
static int check_option(lua_State *L, const char *fname) {
  const char *name = luaL_checkstring(L, 2);
  size_t i;
  lweft_check_nozero(L, 2, 1, fname, NULL);
  for (i = 0; i < sizeof options / sizeof *options; i++)
    if (!strcmp(name, options[i].name)) return (int)i;
  return arg_error(L, 1, fname,
                   lua_pushfstring(L, "unsupported option '%s'", name));
}

/* sk_optname(fname, name): raises as check_option does for an unknown
 * option name (getoption before the socket exists). */
static int lw_optname(lua_State *L) {
  check_option(L, luaL_checkstring(L, 1));
  return 0;
}

/* sk_setopt(fd, name, value) -> true, or nil, message, code; raises for an
 * unknown name or a value of the wrong kind (arguments numbered as the
 * method sees them).  With fd < 0 it only checks. */
static int lw_setopt(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1), i = check_option(L, "setoption"), v;
  struct linger lg;
  void *val = &v;
  socklen_t len = sizeof v;
  if (options[i].kind == OPT_BOOL) {
    if (!lua_isboolean(L, 3))
      return arg_error(L, 2, "setoption",
                       lua_pushfstring(L, "boolean expected, got %s",
                                       luaL_typename(L, 3)));
    v = lua_toboolean(L, 3);
  } else if (options[i].kind == OPT_INT) {
    if (!lua_isinteger(L, 3))
      return arg_error(L, 2, "setoption",
                       lua_pushfstring(L, "integer expected, got %s",
                                       luaL_typename(L, 3)));
    v = (int)lua_tointeger(L, 3);
  } else {
    if (!lua_istable(L, 3) || lua_getfield(L, 3, "on") != LUA_TBOOLEAN ||
        lua_getfield(L, 3, "timeout") != LUA_TNUMBER ||
        !lua_isinteger(L, -1))
      return arg_error(L, 2, "setoption",
                       "table with boolean 'on' and integer 'timeout' "
                       "expected");
    lg.l_onoff = lua_toboolean(L, -2);
    lg.l_linger = (int)lua_tointeger(L, -1);
    val = &lg;
    len = sizeof lg;
  }
  if (fd >= 0 && setsockopt(fd, options[i].level, options[i].opt, val, len) < 0)
    return lweft_push_fail(L, NULL, -errno);
  return push_true(L);
}

/* sk_getopt(fd, name) -> value, or nil, message, code */
static int lw_getopt(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1), i = check_option(L, "getoption"), v = 0;
  struct linger lg;
  socklen_t len = options[i].kind == OPT_LINGER ? sizeof lg : sizeof v;
  if (getsockopt(fd, options[i].level, options[i].opt,
                 options[i].kind == OPT_LINGER ? (void *)&lg : (void *)&v,
                 &len) < 0)
    return lweft_push_fail(L, NULL, -errno);
  if (options[i].kind == OPT_BOOL) {
    lua_pushboolean(L, v);
  } else if (options[i].kind == OPT_INT) {
    lua_pushinteger(L, v);
  } else {
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, lg.l_onoff);
    lua_setfield(L, -2, "on");
    lua_pushinteger(L, lg.l_linger);
    lua_setfield(L, -2, "timeout");
  }
  return 1;
}

void lweft_socket_prims(lua_State *L) {
  static const luaL_Reg prims[] = {
      {"sk_socket", lw_socket},     {"sk_bind", lw_bind},
      {"sk_listen", lw_listen},     {"sk_connect", lw_connect},
      {"sk_shutdown", lw_shutdown}, {"sk_gettime", lw_gettime},
      {"sk_setopt", lw_setopt},     {"sk_getopt", lw_getopt},
      {"sk_optname", lw_optname},   {NULL, NULL}};
  luaL_setfuncs(L, prims, 0);
}
