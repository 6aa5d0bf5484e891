# Sanitizer builds: one sanitizer set for the whole tree, chosen with MEMDESC_SANITIZE.
# The test script builds the suite three times: plain, 'address,undefined' and 'thread'.
if(MEMDESC_SANITIZE)
  if(MEMDESC_SANITIZE MATCHES "thread" AND MEMDESC_SANITIZE MATCHES "address")
    message(FATAL_ERROR "TSan and ASan cannot be combined")
  endif()
  set(_md_san_flags -fsanitize=${MEMDESC_SANITIZE} -fno-omit-frame-pointer)
  if(MEMDESC_SANITIZE MATCHES "undefined")
    # A UBSan finding is a failure, not a line in a log.
    list(APPEND _md_san_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${_md_san_flags})
  add_link_options(${_md_san_flags})
  # Tests read this to scale their operation counts: sanitizers run 3-15x slower.
  add_compile_definitions(MEMDESC_SANITIZER_BUILD=1)
endif()

# The fuzz build: every file gets libFuzzer's coverage instrumentation; the fuzz targets
# link libFuzzer itself (-fsanitize=fuzzer, tests/fuzz/CMakeLists.txt).
if(MEMDESC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MEMDESC_FUZZ needs clang (scripts/fuzz sets CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
