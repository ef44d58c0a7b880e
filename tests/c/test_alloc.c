#include "test.h"
static void placeholder(void) {}
TEST_MAIN(T(placeholder))
