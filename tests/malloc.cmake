# malloc layer tests (issue 5): the md_ API (conformance, bad frees, fork, threads,
# differential against a model, stress), and real programs under LD_PRELOAD.
#
# Every md_ test program forks (Check runs each test in a child, and the allocator's
# fork handler restarts liburcu's call_rcu worker thread in the child, as liburcu
# requires): TSan refuses threads started after a multi-threaded fork unless told
# otherwise, hence die_after_fork=0 in TSan builds.
function(malloc_test name)
  memdesc_add_test(NAME ${name} SOURCES ${name}.c LIBS memdesc_malloc LABELS malloc ${ARGN})
  if(MEMDESC_SANITIZE MATCHES "thread")
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "TSAN_OPTIONS=die_after_fork=0")
  endif()
endfunction()

malloc_test(test_malloc_conformance)
malloc_test(test_malloc_errors)
