# CPython's regression tests under memdesc (tests/cpython/compare.py): 40 test modules
# with Debian's /usr/bin/python3 and its test suite (libpython3.11-testsuite, installed by
# scripts/setup), once with glibc's malloc and once with LD_PRELOAD of
# libmemdesc-malloc.so; every test case must end the same way in both runs.
# Plain builds only: not in sanitizer builds (an uninstrumented python cannot load an
# instrumented library), nor in valgrind or fuzz builds. The test skips itself (exit 77)
# where /usr/bin/python3 or its test suite is missing.
if(MEMDESC_SANITIZE OR MEMDESC_VALGRIND OR MEMDESC_FUZZ OR NOT TARGET memdesc_override)
  return()
endif()
find_program(MEMDESC_PYTHON3 NAMES python3)
if(NOT MEMDESC_PYTHON3)
  message(STATUS "test_cpython not registered: no python3 to run its harness")
  return()
endif()
add_test(NAME test_cpython
         COMMAND ${MEMDESC_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/cpython/compare.py
                 $<TARGET_FILE:memdesc_override>
                 --out ${CMAKE_CURRENT_BINARY_DIR}/cpython-results.txt)
set_tests_properties(test_cpython PROPERTIES TIMEOUT 900 LABELS "cpython;preload"
                     SKIP_RETURN_CODE 77)
