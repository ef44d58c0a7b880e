/* argcheck.c: how the binding raises misuse errors, and the checks of
 * strings that reach C.
 *
 * A misuse error points at the caller: the innermost Lua function that is
 * not one of weft's own Lua parts (weft/stream.lua and the rest), however
 * deep inside weft the check runs (and so also past pcall, which Lua's own
 * luaL_where does not), and names the public function, even where Lua
 * cannot (a method called through pcall).  C and the Lua parts
 * raise through the same code, so their messages cannot drift apart.
 *
 * Strings handed to C as C strings (paths, hosts, services, argv and
 * environment entries, TLS file names) would be cut at their first zero
 * byte: "a\0b" would name "a".  They are refused instead.
 *
 * It depends on no other file of the binding: the bottom of its tree. */
#include "lweft.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Pushes "file:line: " of the caller: the innermost Lua function with a
 * line that is not one of weft's Lua parts; or "" when there is none (a
 * task whose body is weft's own function): a line of weft's would point
 * at weft, not at the mistake. */
static void push_where(lua_State *L) {
  lua_Debug ar;
  int level;
  for (level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0 && strncmp(ar.source, "=weft/", 6) != 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(L, "");
}

int lweft_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  push_where(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

/* The registry key of the table (weak keys) C function -> its public name,
 * for a function Lua cannot name (called through pcall). */
static const char names_key = 0;

void lweft_name_funcs(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &names_key);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_iscfunction(L, -1) && lua_type(L, -2) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -4) == LUA_TNIL) { /* the first name stays */
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -4);
        lua_rawset(L, -6);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* The public name of the function running at level 0 (ar filled with
 * "nf" for it, the function pushed): what the caller called it, else the
 * name it was registered under, else "?".  The name stays valid while the
 * function is on the stack. */
static const char *running_name(lua_State *L, lua_Debug *ar) {
  const char *name = ar->name;
  if (!name) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key);
    if (lua_istable(L, -1)) {
      lua_pushvalue(L, -2);
      lua_rawget(L, -2);
      name = lua_tostring(L, -1); /* (the registry's table keeps it) */
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return name ? name : "?";
}

const char *lweft_public_name(lua_State *L, const char *fallback) {
  lua_Debug ar;
  const char *name;
  int level, pub = -1;
  /* C frames are transparent (weft's Lua parts call through pcall, and
   * through their own C primitives), except the raiser at level 0 and
   * weft's public C functions (a channel's recv, running the loop under a
   * pcall of its own). */
  for (level = 0; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sf", &ar);
    if (ar.what[0] == 'C') {
      int named;
      lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key);
      lua_pushvalue(L, -2);
      named = lua_istable(L, -2) && lua_rawget(L, -2) != LUA_TNIL;
      lua_pop(L, 3);
      if (level == 0 || named) pub = level;
      continue;
    }
    lua_pop(L, 1);
    if (strncmp(ar.source, "=weft/", 6) != 0) break; /* the caller */
    pub = level;
  }
  if (pub < 0 || !lua_getstack(L, pub, &ar) || !lua_getinfo(L, "nf", &ar))
    return fallback;
  name = running_name(L, &ar);
  lua_pop(L, 1);
  return strcmp(name, "?") != 0 ? name : fallback;
}

int lweft_argerror(lua_State *L, int arg, const char *fname,
                   const char *extramsg) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "nf", &ar)) {
    if (!fname) fname = running_name(L, &ar);
    lua_pop(L, 1); /* the function */
    /* A C function called as a method counts self as argument 1, which
     * the caller did not write: number the arguments as the caller sees
     * them, as luaL_argerror does. */
    if (ar.namewhat && strcmp(ar.namewhat, "method") == 0 && --arg == 0)
      return lweft_error(L, "calling '%s' on bad self (%s)", fname, extramsg);
  }
  return lweft_error(L, "bad argument #%d to '%s' (%s)", arg,
                     fname ? fname : "?", extramsg);
}

/* The name of the value at idx as errors give it: its metatable's __name
 * (weft.stream), or its type. */
static const char *type_name(lua_State *L, int idx) {
  const char *name = NULL;
  if (luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
    name = lua_tostring(L, -1); /* (the metatable keeps it) */
    lua_pop(L, 1);
  }
  return name ? name : luaL_typename(L, idx);
}

int lweft_typeerror(lua_State *L, int arg, const char *fname,
                    const char *expected) {
  return lweft_argerror(
      L, arg, fname,
      lua_pushfstring(L, "%s expected, got %s", expected,
                      lua_isnone(L, arg) ? "no value" : type_name(L, arg)));
}

void *lweft_checkudata(lua_State *L, int arg, const char *tname,
                       const char *fname) {
  void *p = luaL_testudata(L, arg, tname);
  if (!p) lweft_typeerror(L, arg, fname, tname);
  return p;
}

void lweft_checktype(lua_State *L, int arg, int t, const char *fname) {
  if (lua_type(L, arg) != t) lweft_typeerror(L, arg, fname, lua_typename(L, t));
}

void lweft_checkany(lua_State *L, int arg, const char *fname) {
  if (lua_isnone(L, arg)) lweft_argerror(L, arg, fname, "value expected");
}

lua_Number lweft_checknumber(lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Number n = lua_tonumberx(L, arg, &isnum);
  if (!isnum) lweft_typeerror(L, arg, fname, "number");
  return n;
}

lua_Integer lweft_checkinteger(lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Integer n = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg))
      lweft_argerror(L, arg, fname, "number has no integer representation");
    else
      lweft_typeerror(L, arg, fname, "number");
  }
  return n;
}

void lweft_check_nozero(lua_State *L, int idx, int arg, const char *fname,
                        const char *what) {
  size_t len;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return;
  s = lua_tolstring(L, idx, &len);
  if (memchr(s, '\0', len))
    lweft_argerror(L, arg, fname,
                   lua_pushfstring(L, "%s contains a zero byte",
                                   what ? what : "string"));
}

int lweft_check_fd(lua_State *L, int arg, const char *fname) {
  luaL_Stream *s;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    int isint;
    lua_Integer fd = lua_tointegerx(L, arg, &isint);
    if (!isint)
      lweft_argerror(L, arg, fname, "number has no integer representation");
    if (fd < 0 || fd > 0x7fffffff)
      lweft_argerror(L, arg, fname, "invalid file descriptor");
    return (int)fd;
  }
  s = luaL_testudata(L, arg, LUA_FILEHANDLE);
  if (!s) return lweft_typeerror(L, arg, fname, "integer or file");
  if (!s->closef) lweft_argerror(L, arg, fname, "attempt to use a closed file");
  return fileno(s->f);
}

/* ---- for weft's Lua parts -------------------------------------------------
 * They are Lua functions: argument numbers are what their callers wrote,
 * and the name is the one given. */

/* argerror(n, fname, message): raises "bad argument #n to 'fname'
 * (message)" at the caller's position.  (The message may quote a string
 * of the caller's with a zero byte: it is copied whole, not as a C
 * string.) */
static int lw_argerror(lua_State *L) {
  int arg = (int)luaL_checkinteger(L, 1);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  lua_settop(L, 3);
  push_where(L);
  lua_pushfstring(L, "bad argument #%d to '", arg);
  lua_pushvalue(L, 2);
  lua_pushliteral(L, "' (");
  lua_pushvalue(L, 3);
  lua_pushliteral(L, ")");
  lua_concat(L, 6);
  return lua_error(L);
}

/* raise(message): raises message at the caller's position. */
static int lw_raise(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  push_where(L);
  lua_insert(L, 1);
  lua_concat(L, 2);
  return lua_error(L);
}

/* nozero(v, n, fname[, what]) -> v: raises for a string with a zero byte
 * ("bad argument #n to 'fname' (what contains a zero byte)"); other values
 * pass (their type is the caller's to check). */
static int lw_nozero(lua_State *L) {
  int arg = (int)luaL_checkinteger(L, 2);
  const char *fname = luaL_checkstring(L, 3);
  const char *what = luaL_optstring(L, 4, NULL);
  lweft_check_nozero(L, 1, arg, fname, what);
  lua_settop(L, 1);
  return 1;
}

/* For a check of the C side, which numbers an argument by its stack
 * index: from (v, n, fname), moves v to index n (the number the Lua part's
 * caller wrote), keeping fname on the stack; returns n. */
static int at_arg(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 2);
  luaL_checkstring(L, 3);
  luaL_argcheck(L, n >= 1 && n <= 32, 2, "argument number out of range");
  lua_settop(L, 3);
  lua_remove(L, 2); /* v, fname */
  if (n >= 2) lua_insert(L, 1); /* fname, v */
  while (lua_gettop(L) < n) {
    lua_pushnil(L);
    lua_insert(L, 1);
  }
  return n;
}

/* check_fd(v, n, fname) -> the descriptor of v (see lweft_check_fd). */
static int lw_check_fd(lua_State *L) {
  const char *fname = luaL_checkstring(L, 3);
  int n = at_arg(L);
  lua_pushinteger(L, lweft_check_fd(L, n, fname));
  return 1;
}

void lweft_argcheck_prims(lua_State *L) {
  static const luaL_Reg prims[] = {{"argerror", lw_argerror},
                                   {"raise", lw_raise},
                                   {"nozero", lw_nozero},
                                   {"check_fd", lw_check_fd},
                                   {NULL, NULL}};
  luaL_setfuncs(L, prims, 0);
}
