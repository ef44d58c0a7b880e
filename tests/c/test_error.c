/* test_error.c: error names and messages, and the version. */
#include "test.h"

static void error_names_and_messages(void) {
#define XX(name, msg)                                                         \
  ASSERT_STR_EQ(weft_err_name(WEFT_##name), #name);                           \
  ASSERT_STR_EQ(weft_strerror(WEFT_##name), msg);                             \
  ASSERT_LT(WEFT_##name, 0);
  WEFT_ERRNO_MAP(XX)
#undef XX
}

static void error_unknown_code(void) {
  ASSERT_STR_EQ(weft_err_name(12345), "EUNKNOWN");
  ASSERT_STR_EQ(weft_strerror(-4242), "unknown error");
  ASSERT_STR_EQ(weft_err_name(0), "EUNKNOWN");
}

static void error_codes_are_negated_errno(void) {
  ASSERT_EQ(WEFT_EBADF, -EBADF);
  ASSERT_EQ(WEFT_EINVAL, -EINVAL);
  ASSERT_EQ(WEFT_ETIMEDOUT, -ETIMEDOUT);
  ASSERT_LE(WEFT_ECLOSED, -5000);
}

static void version_matches_header(void) {
  char buf[32];
  ASSERT_EQ(weft_version(), WEFT_VERSION_HEX);
  snprintf(buf, sizeof buf, "%d.%d.%d", WEFT_VERSION_MAJOR,
           WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
  ASSERT_STR_EQ(weft_version_string(), buf);
}

TEST_MAIN(T(error_names_and_messages) T(error_unknown_code)
          T(error_codes_are_negated_errno) T(version_matches_header))
