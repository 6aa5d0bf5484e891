# memdesc and slab tests (memdesc/, alloc/slab*): unit, differential against a model of
# live ranges, failure injection at every reserve and OS call, multi-threaded stress.
memdesc_add_test(NAME test_memdesc SOURCES test_memdesc.c LIBS memdesc_core LABELS memdesc)
memdesc_add_test(NAME test_slab SOURCES test_slab.c LIBS memdesc_core LABELS memdesc)
memdesc_add_test(NAME test_memdesc_diff SOURCES test_memdesc_diff.c model/memdesc_model.c LIBS memdesc_core
                 LABELS memdesc TIMEOUT 300)
# test_memdesc_fail arms the fault-injection points: MEMDESC_FAULT_INJECTION builds only.
if(MEMDESC_FAULT_INJECTION)
  memdesc_add_test(NAME test_memdesc_fail SOURCES test_memdesc_fail.c LIBS memdesc_core
                   LABELS "memdesc;fault" TIMEOUT 300)
endif()
memdesc_add_test(NAME test_memdesc_stress SOURCES test_memdesc_stress.c LIBS memdesc_core
                 LABELS memdesc TIMEOUT 300)
# memdesc's deferred frees (memdesc/md_rcu.c). One case forks with a worker's batch in
# flight and the child starts a worker of its own: TSan must allow threads after fork.
memdesc_add_test(NAME test_md_rcu SOURCES test_md_rcu.c LIBS memdesc_core LABELS memdesc)
if(MEMDESC_SANITIZE MATCHES "thread")
  set_property(TEST test_md_rcu APPEND PROPERTY ENVIRONMENT
               "TSAN_OPTIONS=${MEMDESC_TSAN_OPTIONS}:die_after_fork=0")
endif()
