# What `cmake --install` and `luarocks make` put in place (the README's
# "Building a C host against weft"; docs/design.md, "Installed files"):
#   include/weft.h, include/weft_lua.h         the C headers
#   lib/libweft.so -> .so.0 -> .so.0.x.y        the core, with its SONAME links
#   lib/pkgconfig/weft.pc                       pkg-config weft
#   lib/cmake/weft/                             find_package(weft): weft::weft,
#                                               weft::lua, a version file
#   lib/lua/5.4/weft.so                         the Lua module
#   share/weft/meta/weft.lua                    LuaLS annotations, off the
#                                               module path (where they would
#                                               shadow weft.so)
# weft.so finds libweft through an RPATH relative to its own place, so an
# installed tree still works when moved.
include(CMakePackageConfigHelpers)

if(WEFT_ROCK_PREFIX)
  # luarocks make: the rock directory is <tree>/lib/luarocks/rocks-5.4/weft/
  # <version>.  luarocks deploys (and tracks) what lands in the rock's lib
  # directory into <tree>/lib/lua/5.4: the module alone, since it copies
  # symlinks as files.  The files for C hosts go to the tree itself, used as
  # a prefix, as a C library would be installed there.
  string(REGEX REPLACE "/lib/luarocks/rocks-[^/]+/[^/]+/[^/]+/*$" "" _tree
         "${WEFT_ROCK_PREFIX}")
  if(_tree STREQUAL WEFT_ROCK_PREFIX)
    message(FATAL_ERROR "weft: cannot tell the luarocks tree from the rock "
      "directory ${WEFT_ROCK_PREFIX} (expected <tree>/lib/luarocks/rocks-<lua>/"
      "weft/<version>)")
  endif()
  set(CMAKE_INSTALL_PREFIX "${_tree}" CACHE PATH "" FORCE)
  set(CMAKE_INSTALL_LIBDIR lib CACHE PATH "" FORCE)
  include(GNUInstallDirs)
  set(_cmod_dest "${WEFT_ROCK_LIBDIR}")
  set(WEFT_LUA_CMODDIR lib/lua/5.4) # where luarocks deploys it
else()
  include(GNUInstallDirs)
  set(WEFT_INSTALL_LUA_CMODDIR "${CMAKE_INSTALL_LIBDIR}/lua/5.4" CACHE PATH
      "Where the Lua module weft.so is installed (relative to the prefix)")
  set(_cmod_dest "${WEFT_INSTALL_LUA_CMODDIR}")
  set(WEFT_LUA_CMODDIR "${WEFT_INSTALL_LUA_CMODDIR}")
  install(FILES meta/weft.lua DESTINATION ${CMAKE_INSTALL_DATADIR}/weft/meta)
endif()

# The module's RPATH: from where it ends up to the library directory.
set(_libdir "${CMAKE_INSTALL_LIBDIR}")
set(_cmoddir "${WEFT_LUA_CMODDIR}")
foreach(v _libdir _cmoddir)
  if(NOT IS_ABSOLUTE "${${v}}")
    set(${v} "${CMAKE_INSTALL_PREFIX}/${${v}}")
  endif()
endforeach()
file(RELATIVE_PATH _up "${_cmoddir}" "${_libdir}")
string(REGEX REPLACE "/$" "" _up "${_up}")
set_target_properties(weft_lua PROPERTIES INSTALL_RPATH "$ORIGIN/${_up}")

install(TARGETS weft EXPORT weftTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES csrc/include/weft.h bindings/lua/weft_lua.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS weft_lua LIBRARY DESTINATION ${_cmod_dest})

set(_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/weft)
install(EXPORT weftTargets NAMESPACE weft:: DESTINATION ${_cmakedir})
configure_package_config_file(cmake/weftConfig.cmake.in
  ${CMAKE_BINARY_DIR}/weftConfig.cmake
  INSTALL_DESTINATION ${_cmakedir} PATH_VARS WEFT_LUA_CMODDIR)
# Within a major version symbols are only added (docs/design.md).
write_basic_package_version_file(${CMAKE_BINARY_DIR}/weftConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/weftConfig.cmake
  ${CMAKE_BINARY_DIR}/weftConfigVersion.cmake DESTINATION ${_cmakedir})

# weft.pc is written when installing, not when configuring: its paths are
# absolute (pkg-config then drops the system ones from its output), and
# `cmake --install --prefix` may change the prefix after configuring.
install(CODE "
  set(WEFT_PC_IN \"${CMAKE_CURRENT_LIST_DIR}/weft.pc.in\")
  set(WEFT_PC_OUT \"${CMAKE_BINARY_DIR}/weft.pc\")
  set(WEFT_PC_VERSION \"${PROJECT_VERSION}\")
  set(WEFT_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(WEFT_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(WEFT_PC_LUA_CMODDIR \"${WEFT_LUA_CMODDIR}\")
  include(\"${CMAKE_CURRENT_LIST_DIR}/weft_pc.cmake\")")
