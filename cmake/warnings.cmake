# The warning flags of every target built here, in one place: link
# onevit_warnings PRIVATE (the installed library links it as
# $<BUILD_INTERFACE:onevit_warnings>, so it stays out of the exported package).
# -DONEVIT_WERROR=ON makes them errors; CI builds with it, g++ and clang alike.
option(ONEVIT_WERROR "Treat compiler warnings as errors" OFF)
add_library(onevit_warnings INTERFACE)
target_compile_options(onevit_warnings INTERFACE -Wall -Wextra $<$<BOOL:${ONEVIT_WERROR}>:-Werror>)
