# Included by cmake_install.cmake (cmake/install.cmake): writes weft.pc for
# the prefix this install goes to and installs it.  The WEFT_PC_* paths are
# relative to the prefix, or absolute.
set(WEFT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(v WEFT_PC_LIBDIR WEFT_PC_INCLUDEDIR WEFT_PC_LUA_CMODDIR)
  if(IS_ABSOLUTE "${${v}}")
    set(_weft_pc_${v} "${${v}}")
  else()
    set(_weft_pc_${v} "${CMAKE_INSTALL_PREFIX}/${${v}}")
    set(${v} "\${prefix}/${${v}}")
  endif()
endforeach()
configure_file("${WEFT_PC_IN}" "${WEFT_PC_OUT}" @ONLY)
file(INSTALL DESTINATION "${_weft_pc_WEFT_PC_LIBDIR}/pkgconfig" TYPE FILE
     FILES "${WEFT_PC_OUT}")
