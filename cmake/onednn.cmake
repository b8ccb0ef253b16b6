# oneDNN 2.x: onevit creates its primitives through the 2.x API (operation
# descriptors such as dnnl::matmul::desc), which oneDNN 3.0 removed.
# Debian 12: libdnnl-dev (2.6.3); elsewhere -Ddnnl_DIR=<prefix>/lib/cmake/dnnl.
find_package(dnnl CONFIG QUIET)
if(NOT dnnl_FOUND)
  message(FATAL_ERROR "onevit needs oneDNN 2.x, and CMake found no dnnl package "
                      "(Debian 12: apt install libdnnl-dev; elsewhere -Ddnnl_DIR=<prefix>/lib/cmake/dnnl)")
endif()
if(dnnl_VERSION VERSION_LESS 2.0 OR NOT dnnl_VERSION VERSION_LESS 3.0)
  message(FATAL_ERROR "onevit needs oneDNN 2.x, found ${dnnl_VERSION} (${dnnl_DIR}): onevit creates its "
                      "primitives through the 2.x API (operation descriptors), which oneDNN 3.0 removed")
endif()
message(STATUS "oneDNN ${dnnl_VERSION} (${dnnl_DIR})")
