/* fs.c: the C half of weft.fs.  Each operation is a job: its blocking
 * system calls run on libuv's thread pool (weft_work), and its end settles
 * a promise on the loop's thread.  fs.lua checks the arguments and turns
 * the promise into values, or nil, message, code. */
#include "lweft.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FD_MT "weft.fd_handle"

enum {
  OP_READFILE, OP_WRITEFILE, OP_OPEN, OP_CLOSE, OP_READ, OP_WRITE,
  OP_STAT, OP_LSTAT, OP_FSTAT, OP_MKDIR, OP_RENAME, OP_UNLINK, OP_RMDIR,
  OP_READDIR, OP_FSYNC
};

static const char *const op_names[] = {
    "readfile", "writefile", "open", "close",  "read",    "write", "stat",
    "lstat",    "fstat",     "mkdir", "rename", "unlink", "rmdir", "readdir",
    "fsync", NULL};

typedef struct fsjob {
  lweft_state *st;
  int ref; /* the promise */
  int op;
  char *path, *path2;
  int fd, flags, mode, atomic;
  int64_t offset;
  char *buf; /* data to write, or what was read */
  size_t len;
  int err; /* -errno, or 0 */
  int64_t result;
  struct stat sb;
  char **names;
  size_t nnames;
} fsjob;

static void job_free(fsjob *j) {
  size_t i;
  free(j->path);
  free(j->path2);
  free(j->buf);
  for (i = 0; i < j->nnames; i++) free(j->names[i]);
  free(j->names);
  free(j);
}

/* ---- on the pool's thread ------------------------------------------------ */

static int write_all(int fd, const char *p, size_t len, int64_t off) {
  while (len > 0) {
    ssize_t r = off >= 0 ? pwrite(fd, p, len, off) : write(fd, p, len);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += r;
    len -= (size_t)r;
    if (off >= 0) off += r;
  }
  return 0;
}

static void do_readfile(fsjob *j) {
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  size_t cap = 0, n = 0;
  if (fd < 0) {
    j->err = -errno;
    return;
  }
  if (fstat(fd, &j->sb) == 0 && S_ISDIR(j->sb.st_mode)) {
    j->err = -EISDIR;
    close(fd);
    return;
  }
  cap = j->sb.st_size > 0 ? (size_t)j->sb.st_size + 1 : 4096;
  j->buf = malloc(cap);
  for (;;) {
    ssize_t r;
    if (!j->buf) {
      j->err = -ENOMEM;
      break;
    }
    if (n == cap) {
      char *b = realloc(j->buf, cap * 2);
      if (!b) {
        j->err = -ENOMEM;
        break;
      }
      j->buf = b;
      cap *= 2;
    }
    r = read(fd, j->buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      j->err = -errno;
      break;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  j->len = n;
  close(fd);
}

/* Writes the whole file; atomically: into a temporary file beside it,
 * synced, then renamed over it, so a reader sees the old or the new
 * contents, never a part. */
static void do_writefile(fsjob *j) {
  char *tmp = NULL;
  const char *target = j->path;
  int fd, err;
  if (j->atomic) {
    size_t n = strlen(j->path) + 16;
    tmp = malloc(n);
    if (!tmp) {
      j->err = -ENOMEM;
      return;
    }
    snprintf(tmp, n, "%s.tmp-XXXXXX", j->path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd >= 0) fchmod(fd, (mode_t)j->mode);
    target = tmp;
  } else {
    fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, j->mode);
  }
  if (fd < 0) {
    j->err = -errno;
    free(tmp);
    return;
  }
  err = write_all(fd, j->buf, j->len, -1);
  if (!err && j->atomic && fsync(fd) < 0) err = -errno;
  if (close(fd) < 0 && !err) err = -errno;
  if (!err && j->atomic && rename(tmp, j->path) < 0) err = -errno;
  if (err && tmp) unlink(tmp);
  free(tmp);
  j->err = err;
}

static void do_readdir(fsjob *j) {
  DIR *d = opendir(j->path);
  struct dirent *e;
  size_t cap = 0;
  if (!d) {
    j->err = -errno;
    return;
  }
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (j->nnames == cap) {
      char **more = realloc(j->names, (cap ? cap * 2 : 16) * sizeof *more);
      if (!more) {
        j->err = -ENOMEM;
        break;
      }
      j->names = more;
      cap = cap ? cap * 2 : 16;
    }
    if (!(j->names[j->nnames] = strdup(e->d_name))) {
      j->err = -ENOMEM;
      break;
    }
    j->nnames++;
  }
  closedir(d);
}

static void run_job(void *data) {
  fsjob *j = data;
  ssize_t r;
  switch (j->op) {
  case OP_READFILE: do_readfile(j); return;
  case OP_WRITEFILE: do_writefile(j); return;
  case OP_READDIR: do_readdir(j); return;
  case OP_OPEN:
    j->result = open(j->path, j->flags | O_CLOEXEC, j->mode);
    break;
  case OP_CLOSE: j->result = close(j->fd); break;
  case OP_READ:
    do r = pread(j->fd, j->buf, j->len, j->offset);
    while (r < 0 && errno == EINTR);
    j->result = r;
    break;
  case OP_WRITE:
    j->err = write_all(j->fd, j->buf, j->len, j->offset);
    j->result = j->err ? -1 : (int64_t)j->len;
    return;
  case OP_STAT: j->result = stat(j->path, &j->sb); break;
  case OP_LSTAT: j->result = lstat(j->path, &j->sb); break;
  case OP_FSTAT: j->result = fstat(j->fd, &j->sb); break;
  case OP_MKDIR: j->result = mkdir(j->path, (mode_t)j->mode); break;
  case OP_RENAME: j->result = rename(j->path, j->path2); break;
  case OP_UNLINK: j->result = unlink(j->path); break;
  case OP_RMDIR: j->result = rmdir(j->path); break;
  case OP_FSYNC: j->result = fsync(j->fd); break;
  }
  if (j->result < 0) j->err = -errno;
}

/* ---- back on the loop ---------------------------------------------------- */

static const char *type_of(mode_t m) {
  return S_ISREG(m)    ? "file"
         : S_ISDIR(m)  ? "directory"
         : S_ISLNK(m)  ? "link"
         : S_ISFIFO(m) ? "fifo"
         : S_ISSOCK(m) ? "socket"
         : S_ISCHR(m)  ? "char"
         : S_ISBLK(m)  ? "block"
                       : "unknown";
}

static void push_time(lua_State *L, struct timespec t, const char *field) {
  lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
  lua_setfield(L, -2, field);
}

static void push_stat(lua_State *L, const struct stat *sb) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, type_of(sb->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)sb->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(sb->st_mode & 07777));
  lua_setfield(L, -2, "mode");
  push_time(L, sb->st_mtim, "mtime");
  push_time(L, sb->st_atim, "atime");
  push_time(L, sb->st_ctim, "ctime");
  lua_pushinteger(L, (lua_Integer)sb->st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)sb->st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)sb->st_ino);
  lua_setfield(L, -2, "ino");
  lua_pushinteger(L, (lua_Integer)sb->st_dev);
  lua_setfield(L, -2, "dev");
  lua_pushinteger(L, (lua_Integer)sb->st_nlink);
  lua_setfield(L, -2, "nlink");
}

static void new_fd_handle(lua_State *L, int fd);

static void job_done(weft_loop_t *loop, int status, void *data) {
  fsjob *j = data;
  lua_State *L = lweft_take_ref(j->st, j->ref);
  int top, n = 1;
  size_t i;
  (void)loop, (void)status;
  if (!L) {
    if (j->op == OP_OPEN && j->result >= 0) close((int)j->result);
    job_free(j);
    return;
  }
  top = lua_gettop(L) - 1; /* below the promise */
  if (j->err) {
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "io");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, weft_strerror(j->err));
    lua_setfield(L, -2, "message");
    lua_pushstring(L, weft_err_name(j->err));
    lua_setfield(L, -2, "code");
    lweft_settle(L, top + 1, -1);
  } else {
    switch (j->op) {
    case OP_READFILE: lua_pushlstring(L, j->buf ? j->buf : "", j->len); break;
    case OP_READ:
      if (j->result == 0 && j->len > 0) lua_pushnil(L); /* end of file */
      else lua_pushlstring(L, j->buf, (size_t)j->result);
      break;
    case OP_OPEN: new_fd_handle(L, (int)j->result); break;
    case OP_WRITE: lua_pushinteger(L, (lua_Integer)j->result); break;
    case OP_STAT: case OP_LSTAT: case OP_FSTAT: push_stat(L, &j->sb); break;
    case OP_READDIR:
      lua_createtable(L, (int)j->nnames, 0);
      for (i = 0; i < j->nnames; i++) {
        lua_pushstring(L, j->names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
    default: lua_pushboolean(L, 1);
    }
    lweft_settle(L, top + 1, n);
  }
  lua_settop(L, top);
  job_free(j);
}

/* ---- descriptors of open files --------------------------------------------- */

typedef struct fdh {
  int fd; /* -1 once released */
} fdh;

static int lw_fdh_gc(lua_State *L) {
  fdh *h = luaL_checkudata(L, 1, FD_MT);
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  return 0;
}

static void new_fd_handle(lua_State *L, int fd) {
  fdh *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->fd = fd;
  luaL_setmetatable(L, FD_MT);
}

/* fd(h) -> the descriptor, or nil once released */
static int lw_fdh_fd(lua_State *L) {
  fdh *h = luaL_checkudata(L, 1, FD_MT);
  if (h->fd < 0) return 0;
  lua_pushinteger(L, h->fd);
  return 1;
}

/* release(h) -> the descriptor, which the handle no longer closes */
static int lw_fdh_release(lua_State *L) {
  fdh *h = luaL_checkudata(L, 1, FD_MT);
  lua_pushinteger(L, h->fd);
  h->fd = -1;
  return 1;
}

/* ---- starting a job ---------------------------------------------------------- */

static char *dup_arg(lua_State *L, int idx, size_t *len) {
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  char *c = malloc(n + 1);
  if (!c) luaL_error(L, "not enough memory");
  memcpy(c, s, n + 1);
  if (len) *len = n;
  return c;
}

/* fs(op, promise, ...) -> true, or nil, message, code.  Arguments by op:
 * readfile(path) writefile(path, data, mode, atomic) open(path, flags,
 * mode) close(fd) read(fd, len, offset) write(fd, data, offset)
 * stat/lstat(path) fstat(fd) mkdir(path, mode) rename(from, to)
 * unlink/rmdir/readdir(path) fsync(fd). */
static int lw_fs(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  int op = luaL_checkoption(L, 1, NULL, op_names), err;
  fsjob *j = calloc(1, sizeof *j);
  if (!j) return luaL_error(L, "not enough memory");
  j->st = st;
  j->op = op;
  j->fd = -1;
  j->ref = LUA_NOREF;
  switch (op) {
  case OP_WRITEFILE:
    j->buf = dup_arg(L, 4, &j->len);
    j->mode = (int)luaL_checkinteger(L, 5);
    j->atomic = lua_toboolean(L, 6);
    /* fallthrough */
  case OP_READFILE: case OP_STAT: case OP_LSTAT: case OP_UNLINK:
  case OP_RMDIR: case OP_READDIR:
    j->path = dup_arg(L, 3, NULL);
    break;
  case OP_OPEN:
    j->path = dup_arg(L, 3, NULL);
    j->flags = (int)luaL_checkinteger(L, 4);
    j->mode = (int)luaL_checkinteger(L, 5);
    break;
  case OP_MKDIR:
    j->path = dup_arg(L, 3, NULL);
    j->mode = (int)luaL_checkinteger(L, 4);
    break;
  case OP_RENAME:
    j->path = dup_arg(L, 3, NULL);
    j->path2 = dup_arg(L, 4, NULL);
    break;
  case OP_READ:
    j->fd = (int)luaL_checkinteger(L, 3);
    j->len = (size_t)luaL_checkinteger(L, 4);
    j->offset = luaL_checkinteger(L, 5);
    j->buf = malloc(j->len ? j->len : 1);
    if (!j->buf) {
      job_free(j);
      return luaL_error(L, "not enough memory");
    }
    break;
  case OP_WRITE:
    j->fd = (int)luaL_checkinteger(L, 3);
    j->buf = dup_arg(L, 4, &j->len);
    j->offset = luaL_checkinteger(L, 5);
    break;
  default: /* close, fstat, fsync */
    j->fd = (int)luaL_checkinteger(L, 3);
  }
  err = weft_work(st->loop, run_job, job_done, j);
  if (err) {
    job_free(j);
    return lweft_push_fail(L, NULL, err);
  }
  lua_pushvalue(L, 2);
  j->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 1);
  return 1;
}

/* The open(2) flags of a Lua mode string ("r", "w", "a", "r+", "w+",
 * "a+", with an optional "b"), or nil. */
static int lw_flags(lua_State *L) {
  const char *m = luaL_checkstring(L, 1);
  int f;
  switch (*m++) {
  case 'r': f = O_RDONLY; break;
  case 'w': f = O_WRONLY | O_CREAT | O_TRUNC; break;
  case 'a': f = O_WRONLY | O_CREAT | O_APPEND; break;
  default: return 0;
  }
  if (*m == '+') {
    f = (f & ~(O_RDONLY | O_WRONLY)) | O_RDWR;
    m++;
  }
  if (*m == 'b') m++;
  if (*m) return 0;
  lua_pushinteger(L, f);
  return 1;
}

void lweft_fs_prims(lua_State *L) {
  static const luaL_Reg prims[] = {{"fs", lw_fs},
                                   {"fdh_fd", lw_fdh_fd},
                                   {"fdh_release", lw_fdh_release},
                                   {"fs_flags", lw_flags},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, FD_MT)) {
    lua_pushcfunction(L, lw_fdh_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
}
