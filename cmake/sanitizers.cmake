# Sanitizer and fuzzing builds (tests/fuzz/README.md).
#
#   -DONEVIT_SANITIZE=address   AddressSanitizer + UndefinedBehaviorSanitizer
#   -DONEVIT_SANITIZE=thread    ThreadSanitizer (suppressions: tests/tsan.supp)
#   -DONEVIT_FUZZ=ON            libFuzzer targets in tests/fuzz (clang only), with
#                               the library instrumented for coverage + ASan/UBSan
#
# The flags go on everything built here (library, apps, tests, benchmarks); the
# system libraries (oneDNN, TBB, libjpeg, libpng) are not instrumented.
set(ONEVIT_SANITIZE "" CACHE STRING "Sanitizers: address (ASan+UBSan), thread (TSan) or empty")
set_property(CACHE ONEVIT_SANITIZE PROPERTY STRINGS "" address thread)
option(ONEVIT_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

set(_onevit_san_common -fno-omit-frame-pointer -g)
if(ONEVIT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ONEVIT_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  if(ONEVIT_SANITIZE AND NOT ONEVIT_SANITIZE STREQUAL "address")
    message(FATAL_ERROR "ONEVIT_FUZZ builds with ASan+UBSan; it cannot be combined with ONEVIT_SANITIZE=${ONEVIT_SANITIZE}")
  endif()
  if(NOT ONEVIT_BUILD_TESTS)
    message(FATAL_ERROR "ONEVIT_FUZZ needs ONEVIT_BUILD_TESTS=ON (the targets live in tests/fuzz)")
  endif()
  # Coverage instrumentation everywhere; -fsanitize=fuzzer (libFuzzer's main) only on
  # the fuzz targets themselves (tests/fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      ${_onevit_san_common})
  add_link_options(-fsanitize=address,undefined)
elseif(ONEVIT_SANITIZE STREQUAL "address")
  # Any undefined behaviour aborts, so ctest sees a failure rather than a log line.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all ${_onevit_san_common})
  add_link_options(-fsanitize=address,undefined)
elseif(ONEVIT_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread ${_onevit_san_common})
  add_link_options(-fsanitize=thread)
elseif(ONEVIT_SANITIZE)
  message(FATAL_ERROR "ONEVIT_SANITIZE=${ONEVIT_SANITIZE}: use address, thread or leave it empty")
endif()
if(ONEVIT_FUZZ)
  message(STATUS "onevit: fuzzing build (libFuzzer, ASan, UBSan)")
elseif(ONEVIT_SANITIZE)
  message(STATUS "onevit: sanitizer build (${ONEVIT_SANITIZE})")
endif()
