# vmem tests (alloc/vmem*): unit, differential against a bitmap model, fragmentation
# against buddy rounding, multi-threaded stress.
memdesc_add_test(NAME test_vmem SOURCES test_vmem.c LIBS memdesc_vmem LABELS vmem)
memdesc_add_test(NAME test_vmem_diff SOURCES test_vmem_diff.c model/vmem_model.c LIBS memdesc_vmem LABELS vmem
                 TIMEOUT 300)
memdesc_add_test(NAME test_vmem_frag SOURCES test_vmem_frag.c LIBS memdesc_vmem LABELS vmem)
memdesc_add_test(NAME test_vmem_stress SOURCES test_vmem_stress.c LIBS memdesc_vmem LABELS vmem
                 TIMEOUT 300)
