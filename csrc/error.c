/* error.c: messages and names of weft's error codes. */
#include "internal.h"

const char *weft_strerror(int err) {
  switch (err) {
#define XX(name, msg)                                                         \
  case WEFT_##name:                                                           \
    return msg;
    WEFT_ERRNO_MAP(XX)
#undef XX
  default:
    return "unknown error";
  }
}

const char *weft_err_name(int err) {
  switch (err) {
#define XX(name, msg)                                                         \
  case WEFT_##name:                                                           \
    return #name;
    WEFT_ERRNO_MAP(XX)
#undef XX
  default:
    return "EUNKNOWN";
  }
}

int weft__err_from_uv(int uverr) {
  if (uverr >= 0) return uverr;
  /* libuv's codes on Unix are negated errno values, as weft's are; keep
   * the ones weft names and fold the rest into EUNKNOWN. */
  switch (uverr) {
#define XX(name, msg)                                                         \
  case WEFT_##name:                                                           \
    return uverr;
    WEFT_ERRNO_MAP(XX)
#undef XX
  default:
    return WEFT_EUNKNOWN;
  }
}
