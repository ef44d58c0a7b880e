# Writes OUT, a C file defining `const char VAR[]` (and VAR_len) holding
# the bytes of SRC: Lua chunks compiled into the module, so that it needs
# no file on package.path.
file(READ "${SRC}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* generated from ${SRC} by cmake/embed.cmake */\n#include <stddef.h>\nconst char ${VAR}[] = {\n${bytes}0};\nconst size_t ${VAR}_len = ${len};\n")
