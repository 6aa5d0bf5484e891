# Valgrind builds (MEMDESC_VALGRIND=ON; scripts/valgrind builds build/valgrind and runs
# `ctest -L valgrind`): the unit and differential tests of every module run under
# memcheck, with the client requests of memdesc/md_valgrind.h, and any error, definite
# or indirect leak fails the test. Check forks a child per test case; valgrind follows
# forks, so a finding in a child makes that child exit with 99, which Check reports.
#
# Not under valgrind: the stress tests (threads serialize under valgrind, and TSan
# covers races), test_memdesc_fail (a MEMDESC_FAULT_INJECTION test, and it asserts the
# default 64 GiB limit, whose address reservation does not fit valgrind's address space:
# MEMDESC_LIMIT=8G here), and the preload/install/bench tests (other programs).
find_program(MEMDESC_VALGRIND_EXE valgrind REQUIRED)
set(MEMDESC_VALGRIND_SUPP ${CMAKE_CURRENT_SOURCE_DIR}/valgrind.supp)
set(MEMDESC_MEMCHECK ${MEMDESC_VALGRIND_EXE} --tool=memcheck -q --error-exitcode=99
    --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --num-callers=30
    --suppressions=${MEMDESC_VALGRIND_SUPP})

set(MEMDESC_VALGRIND_TESTS
    test_xarray test_xarray_small test_xarray_diff
    test_vmem test_vmem_diff test_vmem_frag
    test_memdesc test_slab test_memdesc_diff test_md_rcu
    test_malloc_conformance test_malloc_errors test_malloc_options test_malloc_fork
    test_malloc_threads test_malloc_diff)
foreach(t ${MEMDESC_VALGRIND_TESTS})
  # add_test() puts a target's CROSSCOMPILING_EMULATOR in front of its command.
  set_target_properties(${t} PROPERTIES CROSSCOMPILING_EMULATOR "${MEMDESC_MEMCHECK}")
  set_property(TEST ${t} APPEND PROPERTY LABELS valgrind)
  # CK_TIMEOUT_MULTIPLIER: Check's per-case timeout, for a 20-50x slower run.
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
               "MEMDESC_LIMIT=8G;CK_TIMEOUT_MULTIPLIER=5")
  set_tests_properties(${t} PROPERTIES TIMEOUT 600)
endforeach()

# Other tests of the same programs (the guard=1 runs...) run under valgrind too, as the
# emulator belongs to the program: they need the smaller reservation as well.
get_property(_vg_all_tests DIRECTORY PROPERTY TESTS)
foreach(t ${_vg_all_tests})
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "MEMDESC_LIMIT=8G")
endforeach()

# The client requests themselves: memcheck must see our use-after-free, overflow, leak.
memdesc_add_test(NAME test_valgrind SOURCES test_valgrind.c LIBS memdesc_malloc
                 LABELS valgrind TIMEOUT 300)
target_compile_definitions(test_valgrind PRIVATE MDT_VALGRIND="${MEMDESC_VALGRIND_EXE}"
                           MDT_VALGRIND_SUPP="${MEMDESC_VALGRIND_SUPP}")

add_custom_target(valgrind_tests DEPENDS ${MEMDESC_VALGRIND_TESTS} test_valgrind)
