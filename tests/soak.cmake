# The soak program (tests/soak/soak.c, run long by scripts/soak): threads, random sizes,
# cross-thread frees, forks, periodic heap checks, resident memory back to its baseline.
# Here only a 3-second run of it, a test of the program itself (not in TSan builds: a
# child of its multi-threaded forks may start threads, md_rcu's worker among them, which
# TSan's thread registry refuses, as for test_malloc_fork; not under valgrind).
add_executable(memdesc-soak ${CMAKE_CURRENT_SOURCE_DIR}/soak/soak.c)
target_link_libraries(memdesc-soak PRIVATE memdesc_malloc Threads::Threads)
if(NOT MEMDESC_SANITIZE MATCHES "thread" AND NOT MEMDESC_VALGRIND)
  add_test(NAME test_soak_short
           COMMAND memdesc-soak --duration 3 --threads 4 --check-every 1 --seed 7)
  set_tests_properties(test_soak_short PROPERTIES TIMEOUT 120 LABELS "malloc;soak"
                       ENVIRONMENT "${MEMDESC_SANITIZER_ENV}")
endif()
