# XArray tests. The *_small variants compile the module's sources into the test with
# 8-slot nodes (XA_CHUNK_SHIFT=3), as Linux's test harness does, so that small indices
# make deep trees.
get_target_property(_xa_sources memdesc_xarray SOURCES)

function(memdesc_xarray_test name)
  cmake_parse_arguments(X "" "TIMEOUT" "SOURCES" ${ARGN})
  if(NOT X_TIMEOUT)
    set(X_TIMEOUT 120)
  endif()
  memdesc_add_test(NAME ${name} SOURCES ${X_SOURCES} LIBS memdesc_xarray
                   TIMEOUT ${X_TIMEOUT} LABELS xarray)
  memdesc_add_test(NAME ${name}_small SOURCES ${X_SOURCES} ${_xa_sources}
                   LIBS memdesc_fault PkgConfig::URCU_BP Threads::Threads TIMEOUT ${X_TIMEOUT} LABELS xarray)
  target_compile_definitions(${name}_small PRIVATE XA_CHUNK_SHIFT=3)
  target_include_directories(${name}_small PRIVATE ${PROJECT_SOURCE_DIR}/xarray)
endfunction()

memdesc_xarray_test(test_xarray SOURCES test_xarray.c)
memdesc_xarray_test(test_xarray_diff SOURCES test_xarray_diff.c model/xa_model.c TIMEOUT 300)
memdesc_xarray_test(test_xarray_stress SOURCES test_xarray_stress.c TIMEOUT 300)
