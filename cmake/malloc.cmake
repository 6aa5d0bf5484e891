# The malloc layer (issue 5): the md_ API, the override library, the installed files.
#
#   memdesc_malloc   static, for the tests and the benchmarks of this tree: the md_ API
#                    on top of memdesc_core (xarray, vmem, memdesc, slab).
#   memdesc          libmemdesc.so: the md_ API with everything it needs linked in
#                    (liburcu-bp stays a shared dependency); exports md_* only.
#   memdesc_override libmemdesc-malloc.so: the same plus the standard names (malloc,
#                    free, ...) for LD_PRELOAD; exports those and md_*.
# Installed: both libraries, alloc/md_malloc.h, tools/memdesc-run, memdesc.pc and a
# CMake package (find_package(memdesc) -> memdesc::memdesc, memdesc::malloc).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MD_MALLOC_DIR ${CMAKE_CURRENT_SOURCE_DIR}/alloc)

add_library(memdesc_malloc STATIC ${MD_MALLOC_DIR}/md_malloc.c ${MD_MALLOC_DIR}/md_env.c)
target_include_directories(memdesc_malloc PUBLIC ${MD_MALLOC_DIR})
target_link_libraries(memdesc_malloc PUBLIC memdesc_core PkgConfig::URCU_BP Threads::Threads)

# Shared libraries: only the listed names leave the library (version scripts), and
# calls inside it bind locally (no interposition of our own md_ functions).
set(MD_EXPORT_API "md_malloc;md_malloc_stats;md_free;md_calloc;md_realloc;md_reallocarray;md_aligned_alloc;md_posix_memalign;md_memalign;md_valloc;md_pvalloc;md_malloc_usable_size;md_free_sized;md_free_aligned_sized;md_malloc_trim;md_malloc_stats_print;md_malloc_resident;md_malloc_error_hook;md_malloc_verify")
set(MD_EXPORT_STD "malloc;free;cfree;calloc;realloc;reallocarray;aligned_alloc;posix_memalign;memalign;valloc;pvalloc;malloc_usable_size;free_sized;free_aligned_sized;malloc_trim")
function(md_version_script file names)
  string(REPLACE ";" ";\n    " body "${names}")
  file(WRITE ${file} "{\n  global:\n    ${body};\n  local: *;\n};\n")
endfunction()
md_version_script(${CMAKE_CURRENT_BINARY_DIR}/memdesc.map "${MD_EXPORT_API}")
md_version_script(${CMAKE_CURRENT_BINARY_DIR}/memdesc-malloc.map "${MD_EXPORT_API};${MD_EXPORT_STD}")

add_library(memdesc SHARED ${MD_MALLOC_DIR}/md_malloc.c ${MD_MALLOC_DIR}/md_env.c)
add_library(memdesc_override SHARED ${MD_MALLOC_DIR}/md_override.c ${MD_MALLOC_DIR}/md_env.c)
set_target_properties(memdesc PROPERTIES OUTPUT_NAME memdesc EXPORT_NAME memdesc
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
set_target_properties(memdesc_override PROPERTIES OUTPUT_NAME memdesc-malloc
  EXPORT_NAME malloc)
foreach(t memdesc memdesc_override)
  target_include_directories(${t} PUBLIC
    $<BUILD_INTERFACE:${MD_MALLOC_DIR}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${t} PRIVATE memdesc_core PkgConfig::URCU_BP Threads::Threads)
  target_compile_options(${t} PRIVATE -fno-semantic-interposition)
endforeach()
# -z now: every symbol the libraries import is bound at load. With lazy binding, code
# that runs only in fork()'s child (the child handlers, liburcu-bp's among them) was
# bound anew in every child: the loader's symbol lookup and GOT write cost ~11 page
# faults (copies on write) per fork. Full RELRO comes with it.
target_link_options(memdesc PRIVATE -Wl,-z,now -Wl,-z,relro
  -Wl,--version-script=${CMAKE_CURRENT_BINARY_DIR}/memdesc.map -Wl,--no-undefined)
target_link_options(memdesc_override PRIVATE -Wl,-z,now -Wl,-z,relro
  -Wl,--version-script=${CMAKE_CURRENT_BINARY_DIR}/memdesc-malloc.map -Wl,--no-undefined)
set_property(TARGET memdesc APPEND PROPERTY LINK_DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/memdesc.map)
set_property(TARGET memdesc_override APPEND PROPERTY LINK_DEPENDS
  ${CMAKE_CURRENT_BINARY_DIR}/memdesc-malloc.map)

# memdesc-run: in the build tree it preloads the build tree's library; installed, the
# installed one (found relative to the script).
file(RELATIVE_PATH MD_RUN_BIN_TO_LIB ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set(MD_RUN_LIB "$(dirname \"$0\")/${MD_RUN_BIN_TO_LIB}/libmemdesc-malloc.so")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/tools/memdesc-run.in
  ${CMAKE_CURRENT_BINARY_DIR}/install/memdesc-run @ONLY)
set(MD_RUN_LIB "${CMAKE_CURRENT_BINARY_DIR}/libmemdesc-malloc.so")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/tools/memdesc-run.in
  ${CMAKE_CURRENT_BINARY_DIR}/memdesc-run @ONLY
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                   WORLD_READ WORLD_EXECUTE)

install(TARGETS memdesc memdesc_override EXPORT memdescTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${MD_MALLOC_DIR}/md_malloc.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(PROGRAMS ${CMAKE_CURRENT_BINARY_DIR}/install/memdesc-run
  DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT memdescTargets NAMESPACE memdesc:: FILE memdescTargets.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memdesc)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/memdescConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/memdescConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memdesc)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/memdescConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/memdescConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/memdescConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memdesc)
# memdesc.pc is relocatable: its prefix is found from where the file is (${pcfiledir}),
# so cmake --install --prefix anywhere works.
file(RELATIVE_PATH MD_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/memdesc.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/memdesc.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/memdesc.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
