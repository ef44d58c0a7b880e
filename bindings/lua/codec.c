/* codec.c: the message format for Lua values crossing threads.
 *
 * A message is "W1" and one value:
 *   0 nil | 1 false | 2 true | 3 integer (8 bytes, little endian)
 *   4 float (8 bytes, IEEE 754) | 5 string (varint length, bytes)
 *   6 table (varint pair count, then key, value for each pair)
 *   7 reference to the n-th table of this message (varint n), for shared
 *     subtables and cycles
 *   8 function (varint length, a string.dump binary chunk, an 8-byte
 *     seal; no upvalue but _ENV, which becomes the receiver's globals)
 *   9 channel (varint id in the channel registry, see below)
 *  10 an instance of a registered class: (varint length, the class name),
 *     then its table; the receiver sets the metatable it registered under
 *     that name
 * Decoding checks every length against the bytes left, every reference
 * against the tables seen, nesting against a depth limit, and tags; it
 * rejects garbage with an error and never reads past the message.
 *
 * Channels are never sent as pointers: a process-wide registry maps ids to
 * the channels that have copies in flight.  Each encoded channel takes a
 * reference and counts there; decoding finds it by id and adopts that
 * reference, and an entry goes when nothing of it is in flight.  An id
 * with nothing in flight is garbage.  (A message never received keeps its
 * channels alive.) */
#include "lweft.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_DEPTH 200

enum { T_NIL, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_TABLE, T_REF, T_FUNC,
       T_CHAN, T_CLASS };

/* Per Lua state: function -> its sealed chunk (weak keys), so a function
 * sent again is not dumped again; and sealed chunk -> the function loaded
 * from it, so a worker running the same job again does not load it again
 * (a function crossing threads has no upvalue but _ENV, so one closure
 * serves every message that carries it). */
static const char dumps_key = 0, loaded_key = 0;
#define LOADED_MAX 256 /* distinct functions a state keeps loaded */

/* Pushes registry[key], a table made on first use (weak keys if weak). */
static void cache_table(lua_State *L, const void *key, int weak) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  if (weak) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Registered classes, per Lua state: name -> metatable, and metatable ->
 * name (weak keys). */
static const char classes_key = 0, class_names_key = 0;

int lweft_register_class(lua_State *L, int name, int mt) {
  name = lua_absindex(L, name);
  mt = lua_absindex(L, mt);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &class_names_key) != LUA_TTABLE) {
    lua_newtable(L); /* weak keys: a registered class may still go */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &class_names_key);
  }
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &classes_key);
  }
  lua_pushvalue(L, name);
  if (lua_rawget(L, -2) != LUA_TNIL && !lua_rawequal(L, -1, mt)) {
    lua_pop(L, 2);
    return -1; /* the name is another metatable's */
  }
  lua_pop(L, 1);
  lua_pushvalue(L, name);
  lua_pushvalue(L, mt);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &class_names_key);
  lua_pushvalue(L, mt);
  lua_pushvalue(L, name);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 0;
}

/* ---- the channel registry ------------------------------------------------ */

typedef struct creg {
  uint64_t id;
  weft_chan_t *ch;
  uint64_t inflight;
  struct creg *next;
} creg;

/* ---- function seals -------------------------------------------------------- */
/* Lua does not check binary chunks: a crafted one can crash the loader.
 * Functions only ever come from this process's own encoder, so each chunk
 * carries a seal keyed by a per-process random secret, and the decoder
 * loads none whose seal does not match: garbage cannot reach lua_load. */

static uint64_t seal_key;
static pthread_once_t seal_once = PTHREAD_ONCE_INIT;

static void seal_init(void) {
  uint64_t k = 0;
  if (getrandom(&k, sizeof k, 0) != (ssize_t)sizeof k)
    k = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&k;
  seal_key = k | 1;
}

static uint64_t seal(const void *p, size_t n) {
  const unsigned char *c = p;
  uint64_t h;
  pthread_once(&seal_once, seal_init);
  h = seal_key ^ 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++) {
    h = (h ^ c[i]) * 0x100000001b3u;
    h ^= h >> 29;
  }
  h ^= seal_key;
  h *= 0x9e3779b97f4a7c15u;
  return h ^ (h >> 32);
}

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static creg *reg_head;
static uint64_t reg_next = 1;

/* Counts one more in-flight reference of ch (taking it) and stores its
 * id; an entry lives while something of it is in flight.  0 or -1. */
static int reg_send(weft_chan_t *ch, uint64_t *id) {
  creg *r;
  pthread_mutex_lock(&reg_mu);
  for (r = reg_head; r; r = r->next)
    if (r->ch == ch) break;
  if (!r && (r = malloc(sizeof *r))) {
    r->id = reg_next++;
    r->ch = ch;
    r->inflight = 0;
    r->next = reg_head;
    reg_head = r;
  }
  if (r) {
    r->inflight++;
    weft_chan_ref(ch);
    *id = r->id;
  }
  pthread_mutex_unlock(&reg_mu);
  return r ? 0 : -1;
}

/* Adopts one in-flight reference of channel id; NULL for garbage. */
static weft_chan_t *reg_recv(uint64_t id) {
  creg **p;
  weft_chan_t *ch = NULL;
  pthread_mutex_lock(&reg_mu);
  for (p = &reg_head; *p; p = &(*p)->next) {
    creg *r = *p;
    if (r->id != id) continue;
    ch = r->ch;
    if (--r->inflight == 0) { /* nothing of it in flight: forget it */
      *p = r->next;
      free(r);
    }
    break;
  }
  pthread_mutex_unlock(&reg_mu);
  return ch;
}

/* ---- encoding ------------------------------------------------------------- */

/* A message block owned by a userdata whose __gc frees it: the encoder's
 * block, so that an error frees it with the rest, and a message kept for
 * a later call.  Pushes an empty one. */
static const char box_mt_key = 0;

static int box_gc(lua_State *L) {
  lweft_msgbox *m = lua_touserdata(L, 1);
  weft_chan_free(m->p);
  m->p = NULL;
  return 0;
}

lweft_msgbox *lweft_msgbox_push(lua_State *L) {
  lweft_msgbox *m = lua_newuserdatauv(L, sizeof *m, 0);
  m->p = NULL;
  m->len = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &box_mt_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &box_mt_key);
  }
  lua_setmetatable(L, -2);
  return m;
}

void *lweft_msg_take(lua_State *L, const char *p, size_t len,
                     lweft_msgbox *box) {
  void *block;
  if (box && box->p == p) {
    block = box->p;
    box->p = NULL;
    return block;
  }
  if (!(block = weft_chan_realloc(NULL, len))) {
    luaL_error(L, "not enough memory");
    return NULL;
  }
  memcpy(block, p, len);
  return block;
}

/* The message being built: on the C stack while it is short, then in a
 * userdata at a fixed stack slot (replaced by a bigger one as it grows,
 * the old one left to the collector), so that an error frees it with the
 * rest and the encoder may use the stack freely meanwhile (a luaL_Buffer
 * would need the stack balanced at every addition).  A message longer
 * than BLOCK_MIN moves to a block of weft_chan_realloc owned by a box in
 * that slot: it grows in place where the allocator can (a large block is
 * remapped, not copied), leaves no garbage, and is handed on as it is, so
 * that a long string is copied once on its way, into the message.  (A box
 * costs its finalizer, more than copying a short message again.) */
#define BLOCK_MIN ((size_t)64 * 1024)

typedef struct obuf {
  lua_State *L;
  int slot; /* the stack slot of the userdata or the box */
  lweft_msgbox *box; /* NULL until the message is in a block */
  char *p;
  size_t n, cap;
  char init[256]; /* small messages never leave the C stack */
} obuf;

/* Frees the message's block now that an error is on its way: a large one
 * would otherwise wait for the collector. */
static void ob_drop(obuf *b) {
  if (!b->box) return;
  weft_chan_free(b->box->p);
  b->box->p = NULL;
  b->box = NULL;
  b->p = b->init;
  b->n = 0;
  b->cap = sizeof b->init;
}

/* Makes room for len more bytes: doubling, or exactly what they need if
 * that is more (a message of one long string is made in a block of its
 * size). */
static void ob_grow(obuf *b, size_t len) {
  size_t cap = b->cap * 2 > b->n + len ? b->cap * 2 : b->n + len;
  char *np;
  if (cap <= BLOCK_MIN) {
    np = lua_newuserdatauv(b->L, cap, 0);
    memcpy(np, b->p, b->n);
    lua_replace(b->L, b->slot);
  } else if (!b->box) {
    lweft_msgbox *box = lweft_msgbox_push(b->L);
    if (!(np = weft_chan_realloc(NULL, cap))) luaL_error(b->L, "not enough memory");
    memcpy(np, b->p, b->n);
    box->p = np;
    lua_replace(b->L, b->slot); /* (a userdata there goes) */
    b->box = box;
  } else if ((np = weft_chan_realloc(b->box->p, cap))) {
    b->box->p = np;
  } else {
    ob_drop(b);
    luaL_error(b->L, "not enough memory");
  }
  b->p = np;
  b->cap = cap;
}

static void ob_add(obuf *b, const void *data, size_t len) {
  if (b->cap - b->n < len) ob_grow(b, len);
  memcpy(b->p + b->n, data, len);
  b->n += len;
}

static void ob_char(obuf *b, int c) {
  char ch = (char)c;
  ob_add(b, &ch, 1);
}

typedef struct enc {
  lua_State *L;
  obuf *b;
  int seen;   /* stack index: table -> its number (nil until a table) */
  int path;   /* stack index: path parts below the root, for errors */
  int npath;
  int ntables;
  const char *root; /* "args": errors name root[index] and the parts */
  int index;
} enc;

/* Makes the seen and path tables, on the first table or function. */
static void need_tables(enc *e) {
  if (!lua_isnil(e->L, e->seen)) return;
  lua_newtable(e->L);
  lua_replace(e->L, e->seen);
  lua_newtable(e->L);
  lua_replace(e->L, e->path);
}

static void put_varint(obuf *b, uint64_t v) {
  while (v >= 0x80) {
    ob_char(b, (int)(v | 0x80));
    v >>= 7;
  }
  ob_char(b, (int)v);
}

static void put_u64(obuf *b, uint64_t v) {
  char c[8];
  for (int i = 0; i < 8; i++) c[i] = (char)(v >> (8 * i));
  ob_add(b, c, 8);
}

/* Raises "<path>: <what> cannot cross threads". */
static int refuse(enc *e, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer pb;
  ob_drop(e->b);
  luaL_buffinit(L, &pb);
  lua_pushfstring(L, "%s[%d]", e->root, e->index);
  luaL_addvalue(&pb);
  for (int i = 1; i <= e->npath; i++) {
    lua_rawgeti(L, e->path, i);
    luaL_addvalue(&pb);
  }
  luaL_pushresult(&pb);
  return luaL_error(L, "%s: %s cannot cross threads", lua_tostring(L, -1),
                    what);
}

static void path_push(enc *e, const char *fmt, int idx) {
  lua_State *L = e->L;
  if (fmt) {
    lua_pushstring(L, fmt);
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    const char *k = lua_tostring(L, idx);
    int ident = (*k == '_' || (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z'));
    for (const char *c = k; ident && *c; c++)
      ident = *c == '_' || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
    if (ident) lua_pushfstring(L, ".%s", k);
    else lua_pushfstring(L, "[\"%s\"]", k);
  } else {
    lua_pushfstring(L, "[%s]", luaL_tolstring(L, idx, NULL));
    lua_remove(L, -2);
  }
  lua_rawseti(L, e->path, ++e->npath);
}

static void path_pop(enc *e) {
  lua_pushnil(e->L);
  lua_rawseti(e->L, e->path, e->npath--);
}

/* lua_dump's writer: into a malloc'd block (no Lua call while dumping). */
typedef struct dumpbuf {
  char *p;
  size_t n, cap;
} dumpbuf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  dumpbuf *d = ud;
  (void)L;
  if (d->cap - d->n < sz) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    char *np;
    while (cap - d->n < sz) cap *= 2;
    if (!(np = realloc(d->p, cap))) return 1;
    d->p = np;
    d->cap = cap;
  }
  memcpy(d->p + d->n, p, sz);
  d->n += sz;
  return 0;
}

static void encode(enc *e, int idx, int depth);

static void encode_table(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  lua_Integer n = 0;
  if (lua_getmetatable(L, idx)) {
    size_t len;
    const char *name;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &class_names_key) != LUA_TTABLE ||
        (lua_pushvalue(L, -2), lua_rawget(L, -2)) != LUA_TSTRING)
      refuse(e, "table with a metatable (not a registered class)");
    name = lua_tolstring(L, -1, &len);
    lua_pushvalue(L, idx); /* a table seen before is a reference: no tag */
    need_tables(e);
    if (lua_rawget(L, e->seen) == LUA_TNIL) {
      ob_char(e->b, T_CLASS);
      put_varint(e->b, len);
      ob_add(e->b, name, len);
    }
    lua_pop(L, 4);
  }
  need_tables(e);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) == LUA_TNUMBER) {
    ob_char(e->b, T_REF);
    put_varint(e->b, (uint64_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, e->ntables++);
  lua_rawset(L, e->seen);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
  }
  ob_char(e->b, T_TABLE);
  put_varint(e->b, (uint64_t)n);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    path_push(e, ".<key>", 0);
    encode(e, k, depth + 1);
    path_pop(e);
    path_push(e, NULL, k);
    encode(e, k + 1, depth + 1);
    path_pop(e);
    lua_pop(L, 1);
  }
}

static void encode(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  obuf *b = e->b;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "nesting");
  if (depth > MAX_DEPTH) refuse(e, "a structure nested this deep");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: ob_char(b, T_NIL); break;
  case LUA_TBOOLEAN: ob_char(b, lua_toboolean(L, idx) ? T_TRUE : T_FALSE); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      ob_char(b, T_INT);
      put_u64(b, (uint64_t)lua_tointeger(L, idx));
    } else {
      lua_Number d = lua_tonumber(L, idx);
      uint64_t u;
      double dd = (double)d;
      memcpy(&u, &dd, 8);
      ob_char(b, T_FLT);
      put_u64(b, u);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    ob_char(b, T_STR);
    put_varint(b, len);
    ob_add(b, s, len);
    break;
  }
  case LUA_TTABLE: encode_table(e, idx, depth); break;
  case LUA_TFUNCTION: {
    lua_Debug ar;
    const char *up;
    if (lua_iscfunction(L, idx)) refuse(e, "C function");
    lua_pushvalue(L, idx);
    lua_getinfo(L, ">u", &ar);
    if (ar.nups > 1 || (ar.nups == 1 && (!(up = lua_getupvalue(L, idx, 1)) ||
                                         (lua_pop(L, 1), strcmp(up, "_ENV")))))
      refuse(e, "function with upvalues");
    cache_table(L, &dumps_key, 1);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) != LUA_TSTRING) { /* dump and seal it once */
      dumpbuf d = {NULL, 0, 0};
      uint64_t sl;
      char sb[8];
      int bad;
      lua_pop(L, 1);
      lua_pushvalue(L, idx);
      bad = lua_dump(L, dump_writer, &d, 0); /* keep lines: tracebacks */
      lua_pop(L, 1);
      if (bad || dump_writer(L, "12345678", 8, &d)) {
        free(d.p);
        luaL_error(L, "not enough memory");
      }
      sl = seal(d.p, d.n - 8);
      for (int i = 0; i < 8; i++) sb[i] = (char)(sl >> (8 * i));
      memcpy(d.p + d.n - 8, sb, 8);
      lua_pushlstring(L, d.p, d.n);
      free(d.p);
      lua_pushvalue(L, idx);
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);
    }
    {
      size_t len;
      const char *chunk = lua_tolstring(L, -1, &len);
      ob_char(b, T_FUNC);
      put_varint(b, len - 8);
      ob_add(b, chunk, len); /* the chunk, then its seal */
    }
    lua_pop(L, 2);
    break;
  }
  case LUA_TUSERDATA: {
    weft_chan_t *ch = lweft_test_chan(L, idx);
    uint64_t id = 0;
    if (!ch) {
      if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
        refuse(e, lua_tostring(L, -1)); /* "FILE*", "weft.stream" */
      refuse(e, "userdata");
    }
    if (reg_send(ch, &id)) luaL_error(L, "not enough memory");
    ob_char(b, T_CHAN);
    put_varint(b, id);
    break;
  }
  default: refuse(e, luaL_typename(L, idx));
  }
}

int lweft_encode_with(lua_State *L, int first, int n, const char *root,
                      lweft_use_message use, void *ud) {
  obuf b;
  enc e;
  int top = lua_gettop(L), r, pushed;
  first = lua_absindex(L, first);
  luaL_checkstack(L, 8, "encoding");
  lua_pushnil(L); /* top + 1: seen, made when needed */
  lua_pushnil(L); /* top + 2: path, made with it */
  lua_pushnil(L); /* top + 3: the message once it outgrows b.init */
  b.L = L;
  b.cap = sizeof b.init;
  b.n = 0;
  b.p = b.init;
  b.box = NULL;
  b.slot = top + 3;
  e.L = L;
  e.b = &b;
  e.seen = top + 1;
  e.path = top + 2;
  e.npath = 0;
  e.ntables = 0;
  e.root = root;
  ob_add(&b, "W1", 2);
  put_varint(&b, (uint64_t)n); /* the count of values, then each */
  for (int i = 0; i < n; i++) {
    e.index = i + 1;
    encode(&e, first + i, 0);
  }
  if (b.box) { /* in flight, a block holds what it needs and no more */
    char *np = b.cap > b.n ? weft_chan_realloc(b.box->p, b.n) : NULL;
    if (np) b.box->p = b.p = np;
    b.box->len = b.n;
  }
  r = use(L, ud, b.p, b.n, b.box);
  if (b.box) ob_drop(&b); /* unless use took it, the block goes now */
  /* What use pushed goes down over the encoder's three slots. */
  pushed = lua_gettop(L) - (top + 3);
  lua_rotate(L, top + 1, -3);
  lua_settop(L, top + pushed);
  return r;
}

static int push_message(lua_State *L, void *ud, const char *p, size_t n,
                        lweft_msgbox *box) {
  (void)ud, (void)box;
  lua_pushlstring(L, p, n);
  return 1;
}

int lweft_encode(lua_State *L, int first, int n, const char *root) {
  return lweft_encode_with(L, first, n, root, push_message, NULL);
}

/* ---- decoding ------------------------------------------------------------- */

typedef struct dec {
  lua_State *L;
  const unsigned char *p, *end;
  int tables; /* stack index: the tables made so far, by number */
  int ntables;
  int env;    /* stack index of the globals for functions, or 0 */
} dec;

static int garbage(dec *d, const char *why) {
  return luaL_error(d->L, "bad message: %s", why);
}

static uint64_t get_varint(dec *d) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    unsigned char c;
    if (d->p >= d->end) garbage(d, "truncated");
    c = *d->p++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
  }
  garbage(d, "varint too long");
  return 0;
}

static uint64_t get_u64(dec *d) {
  uint64_t v = 0;
  if (d->end - d->p < 8) garbage(d, "truncated");
  for (int i = 0; i < 8; i++) v |= (uint64_t)d->p[i] << (8 * i);
  d->p += 8;
  return v;
}

static void decode(dec *d, int depth) {
  lua_State *L = d->L;
  int tag;
  if (depth > MAX_DEPTH) garbage(d, "nested too deep");
  luaL_checkstack(L, 8, "nesting");
  if (d->p >= d->end) garbage(d, "truncated");
  tag = *d->p++;
  switch (tag) {
  case T_NIL: lua_pushnil(L); break;
  case T_FALSE: lua_pushboolean(L, 0); break;
  case T_TRUE: lua_pushboolean(L, 1); break;
  case T_INT: lua_pushinteger(L, (lua_Integer)get_u64(d)); break;
  case T_FLT: {
    uint64_t u = get_u64(d);
    double x;
    memcpy(&x, &u, 8);
    lua_pushnumber(L, (lua_Number)x);
    break;
  }
  case T_STR:
  case T_FUNC: {
    uint64_t len = get_varint(d);
    if (len > (uint64_t)(d->end - d->p)) garbage(d, "truncated string");
    if (tag == T_STR) {
      lua_pushlstring(L, (const char *)d->p, (size_t)len);
      d->p += len;
    } else {
      const unsigned char *chunk = d->p;
      if ((uint64_t)(d->end - d->p) - len < 8) garbage(d, "truncated");
      d->p += len + 8;
      cache_table(L, &loaded_key, 0);
      lua_pushlstring(L, (const char *)chunk, (size_t)len + 8);
      if (lua_rawget(L, -2) == LUA_TFUNCTION) { /* the same chunk again */
        lua_remove(L, -2);
        break;
      }
      lua_pop(L, 1);
      {
        uint64_t sl = 0;
        for (int i = 0; i < 8; i++) sl |= (uint64_t)chunk[len + i] << (8 * i);
        if (sl != seal(chunk, (size_t)len))
          garbage(d, "function not sealed by this process");
      }
      if (luaL_loadbufferx(L, (const char *)chunk, (size_t)len, "=(thread)",
                           "b") != LUA_OK)
        garbage(d, "bad function");
      if (d->env) {
        lua_pushvalue(L, d->env);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
      }
      if (lua_rawlen(L, -2) == 0) { /* keep it, within a bound */
        lua_Integer n = 0;
        lua_pushnil(L);
        while (lua_next(L, -3)) {
          n++;
          lua_pop(L, 1);
        }
        if (n >= LOADED_MAX) { /* a new table: forget them all */
          lua_newtable(L);
          lua_replace(L, -3);
          lua_pushvalue(L, -2);
          lua_rawsetp(L, LUA_REGISTRYINDEX, &loaded_key);
        }
      }
      lua_pushlstring(L, (const char *)chunk, (size_t)len + 8);
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);
      lua_remove(L, -2);
    }
    break;
  }
  case T_TABLE: {
    uint64_t n = get_varint(d), i;
    int t;
    if (n > (uint64_t)(d->end - d->p)) garbage(d, "truncated table");
    lua_createtable(L, 0, n < 1024 ? (int)n : 0);
    t = lua_gettop(L);
    if (lua_isnil(L, d->tables)) { /* the first table: make the list */
      lua_newtable(L);
      lua_replace(L, d->tables);
    }
    lua_pushvalue(L, t);
    lua_rawseti(L, d->tables, ++d->ntables);
    for (i = 0; i < n; i++) {
      decode(d, depth + 1);
      if (lua_isnil(L, -1)) garbage(d, "nil key");
      if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))
        garbage(d, "NaN key");
      decode(d, depth + 1);
      lua_rawset(L, t);
    }
    break;
  }
  case T_REF: {
    uint64_t i = get_varint(d);
    if (i >= (uint64_t)d->ntables) garbage(d, "bad reference");
    lua_rawgeti(L, d->tables, (lua_Integer)i + 1);
    break;
  }
  case T_CLASS: {
    uint64_t len = get_varint(d);
    const char *cname;
    if (len > (uint64_t)(d->end - d->p)) garbage(d, "truncated class name");
    cname = lua_pushlstring(L, (const char *)d->p, (size_t)len);
    d->p += len;
    if (d->p >= d->end || *d->p != T_TABLE) garbage(d, "class without a table");
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key) != LUA_TTABLE ||
        (lua_pushvalue(L, -2), lua_rawget(L, -2)) != LUA_TTABLE)
      luaL_error(L, "class '%s' is not registered in this Lua state "
                    "(weft.thread.register)", cname);
    lua_replace(L, -3); /* the metatable, where the name was */
    lua_pop(L, 1);
    decode(d, depth + 1);
    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
    lua_remove(L, -2);
    break;
  }
  case T_CHAN: {
    weft_chan_t *ch = reg_recv(get_varint(d));
    if (!ch) garbage(d, "unknown channel");
    lweft_push_chan(L, ch); /* adopts the reference */
    break;
  }
  default: garbage(d, "unknown tag");
  }
}

int lweft_decode(lua_State *L, const void *data, size_t len, int env) {
  dec d;
  uint64_t n, i;
  int top = lua_gettop(L);
  env = env ? lua_absindex(L, env) : 0;
  d.L = L;
  d.p = data;
  d.end = d.p + len;
  d.ntables = 0;
  d.env = env;
  if (len < 2 || memcmp(data, "W1", 2)) garbage(&d, "not a weft message");
  d.p += 2;
  lua_pushnil(L); /* the tables seen, made on the first */
  d.tables = top + 1;
  n = get_varint(&d);
  if (n > len) garbage(&d, "too many values");
  for (i = 0; i < n; i++) decode(&d, 0);
  if (d.p != d.end) garbage(&d, "trailing bytes");
  lua_remove(L, top + 1);
  return (int)n;
}
