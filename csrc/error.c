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
  case UV_EAI_NONAME:
  case UV_EAI_NODATA:
    return WEFT_EAI_NONAME;
  case UV_EAI_AGAIN:
    return WEFT_EAI_AGAIN;
  case UV_EAI_FAIL:
    return WEFT_EAI_FAIL;
  case UV_EAI_FAMILY:
  case UV_EAI_ADDRFAMILY:
    return WEFT_EAI_FAMILY;
  case UV_EAI_SERVICE:
  case UV_EAI_SOCKTYPE:
    return WEFT_EAI_SERVICE;
  case UV_EAI_MEMORY:
    return WEFT_ENOMEM;
  case UV_EAI_CANCELED:
    return WEFT_ECANCELED;
#define XX(name, msg)                                                         \
  case WEFT_##name:                                                           \
    return uverr;
    WEFT_ERRNO_MAP(XX)
#undef XX
  default:
    return WEFT_EUNKNOWN;
  }
}

int weft__err_from_errno(int e) {
  return e > 0 ? weft__err_from_uv(-e) : WEFT_EUNKNOWN;
}
