# The benchmark harness end to end (issue 6): bench_e2e runs scripts/main's smoke mode
# (minimal repetitions, tiny workloads) on this build and checks that every table row
# has a number for every allocator and that the report and the charts were written.
# No timing is asserted.
#
# It needs the harness's programs, which only make sense without sanitizers (jemalloc
# and mimalloc are not instrumented, and ASan/TSan replace malloc themselves), so:
#   - sanitizer builds: not registered;
#   - MEMDESC_BENCH=ON: uses bench/'s targets;
#   - MEMDESC_BENCH=OFF (scripts/test's builds): builds bench/ itself, here, so that
#     the plain CI build runs the test too;
#   - not registered either when Google Benchmark, python3 or gnuplot is missing (said
#     at configure time).
if(MEMDESC_SANITIZE)
  return()
endif()
find_package(benchmark QUIET)
find_package(Python3 COMPONENTS Interpreter QUIET)
find_program(MDB_GNUPLOT gnuplot)
if(NOT benchmark_FOUND OR NOT Python3_Interpreter_FOUND OR NOT MDB_GNUPLOT)
  message(STATUS "bench_e2e not registered: needs Google Benchmark, python3 and gnuplot")
  return()
endif()
if(NOT MEMDESC_BENCH)
  add_subdirectory(${PROJECT_SOURCE_DIR}/bench ${PROJECT_BINARY_DIR}/bench)
endif()
add_test(NAME bench_e2e
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/bench-e2e ${PROJECT_BINARY_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/bench-e2e)
set_tests_properties(bench_e2e PROPERTIES TIMEOUT 600 LABELS bench)
