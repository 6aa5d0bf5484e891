# malloc layer tests (issue 5): the md_ API (conformance, bad frees, fork, threads,
# differential against a model, stress), and real programs under LD_PRELOAD.
#
# Every md_ test program forks (Check runs each test in a child, whose deferred frees may
# start md_rcu's worker there): TSan refuses threads started after a multi-threaded fork
# unless told otherwise, hence die_after_fork=0 in TSan builds.
function(malloc_test name)
  memdesc_add_test(NAME ${name} SOURCES ${name}.c LIBS memdesc_malloc LABELS malloc ${ARGN})
  if(MEMDESC_SANITIZE MATCHES "thread")
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "TSAN_OPTIONS=${MEMDESC_TSAN_OPTIONS}:die_after_fork=0")
  endif()
endfunction()

malloc_test(test_malloc_conformance)
malloc_test(test_malloc_errors)
# Not under TSan: its children start threads (the test's own, and md_rcu's worker when
# they have deferred frees), and glibc gives a child's new thread the stack, hence the
# pthread_t, of a parent thread that TSan's registry still counts as alive: TSan dies
# with "dup thread with used id". Plain and ASan run it.
if(NOT MEMDESC_SANITIZE MATCHES "thread")
  malloc_test(test_malloc_fork)
endif()
malloc_test(test_malloc_threads)
malloc_test(test_malloc_options)
malloc_test(test_malloc_diff)
target_sources(test_malloc_diff PRIVATE model/malloc_model.c)
malloc_test(test_malloc_stress)
malloc_test(test_malloc_guard)
# A test program again under MEMDESC_OPTIONS=@opts, as ${t}_@suffix (without its
# fault-injection sweeps, which tests/fault.cmake runs once).
function(malloc_test_again t suffix opts)
  add_test(NAME ${t}_${suffix} COMMAND ${t})
  set_tests_properties(${t}_${suffix} PROPERTIES TIMEOUT 120 LABELS malloc
                       ENVIRONMENT "MEMDESC_OPTIONS=${opts};CK_EXCLUDE_TAGS=fault;CK_DEFAULT_TIMEOUT=120;${MEMDESC_SANITIZER_ENV}")
  if(MEMDESC_SANITIZE MATCHES "thread")
    set_property(TEST ${t}_${suffix} APPEND PROPERTY ENVIRONMENT "TSAN_OPTIONS=${MEMDESC_TSAN_OPTIONS}:die_after_fork=0")
  endif()
endfunction()
# No false positives of guard=1: the conformance and differential suites again with it.
foreach(t test_malloc_conformance test_malloc_diff)
  malloc_test_again(${t} guard guard=1)
endforeach()
# The heap in huge pages (thp=1: purges and page-table moves then cut huge pages):
# the conformance suite (sizes to 64 MiB, realloc's moves) and the stress test.
foreach(t test_malloc_conformance test_malloc_stress)
  malloc_test_again(${t} thp thp=1)
endforeach()

# Real programs under LD_PRELOAD (tests/preload/run.sh): python3, a multi-threaded C
# program, gcc, sort. Not in sanitizer builds: an ASan/TSan runtime in the test process
# conflicts with preloading another malloc (and the programs are not instrumented).
if(NOT MEMDESC_SANITIZE)
  add_executable(mt_alloc preload/mt_alloc.c)
  target_link_libraries(mt_alloc PRIVATE Threads::Threads)
  foreach(case python mt gcc sort)
    add_test(NAME test_malloc_preload_${case}
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/preload/run.sh
                     $<TARGET_FILE:memdesc_override> ${case} ${PROJECT_SOURCE_DIR}
                     $<TARGET_FILE:mt_alloc>)
    set_tests_properties(test_malloc_preload_${case} PROPERTIES TIMEOUT 120
                         LABELS "malloc;preload")
  endforeach()
endif()

# cmake --install into a temporary prefix, then a program built against the installed
# copy with pkg-config and with find_package (tests/preload/install.sh). Not in
# sanitizer builds (an uninstrumented consumer cannot load an instrumented library).
if(NOT MEMDESC_SANITIZE)
  add_test(NAME test_malloc_install
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/preload/install.sh ${PROJECT_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_malloc_install PROPERTIES TIMEOUT 120 LABELS "malloc;install")
endif()
