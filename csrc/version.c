/* version.c: the version of the loaded library. */
#include "internal.h"

#define WEFT__STR2(x) #x
#define WEFT__STR(x) WEFT__STR2(x)

unsigned int weft_version(void) { return WEFT_VERSION_HEX; }

const char *weft_version_string(void) {
  return WEFT__STR(WEFT_VERSION_MAJOR) "." WEFT__STR(
      WEFT_VERSION_MINOR) "." WEFT__STR(WEFT_VERSION_PATCH);
}
