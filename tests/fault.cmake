# Fault-injection sweeps (issue 7; MEMDESC_FAULT_INJECTION builds only): the malloc
# conformance workload and the differential workloads, each run again and again with
# the N-th crossing of a fault point failing (tests/mdt_fault.h says how). Each is the
# "fault" test case (Check tag "fault") of the program that holds the workload: the
# fault_* test runs only that case, the program's ordinary test excludes it.
if(NOT MEMDESC_FAULT_INJECTION)
  return()
endif()

function(memdesc_fault_test name program)
  add_test(NAME ${name} COMMAND ${program})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300 LABELS fault ENVIRONMENT
                       "CK_INCLUDE_TAGS=fault;CK_DEFAULT_TIMEOUT=300;${MEMDESC_SANITIZER_ENV}")
  set_property(TEST ${program} APPEND PROPERTY ENVIRONMENT "CK_EXCLUDE_TAGS=fault")
endfunction()

memdesc_fault_test(fault_xarray_diff test_xarray_diff)
memdesc_fault_test(fault_xarray_diff_small test_xarray_diff_small)
memdesc_fault_test(fault_vmem_diff test_vmem_diff)
memdesc_fault_test(fault_memdesc_diff test_memdesc_diff)
memdesc_fault_test(fault_malloc_diff test_malloc_diff)
memdesc_fault_test(fault_malloc_conformance test_malloc_conformance)
