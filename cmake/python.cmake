# The Pythons of a build, often one and the same:
# - the active Python, as FindPython3 finds it (a virtual environment's, else the first python3
#   on PATH; -DPython3_EXECUTABLE=... chooses; `pip install .` passes the one pip runs): the
#   module onevit is built for it, and `cmake --install` puts it in that Python's site directory
#   under the prefix;
# - ONEVIT_PYTHON runs the converter (onevit-convert), the Python-driven tests and the scripts
#   around the build, which need numpy, torch, torchvision and PIL (Debian: .ci/packages): the
#   active Python if it has them, else Debian's /usr/bin/python3 if it has them;
#   -DONEVIT_PYTHON=... chooses;
# - ONEVIT_MODULE_TEST_PYTHON runs the tests that import the module (they need numpy, torch and
#   PIL too): the active Python if it has them, else ONEVIT_PYTHON where it imports the same
#   module file (the same EXT_SUFFIX: the same CPython ABI); else those tests are skipped, with
#   ONEVIT_MODULE_TEST_SKIP saying why.
find_package(Python3 REQUIRED COMPONENTS Interpreter OPTIONAL_COMPONENTS Development.Module)

# Whether `python` imports every module of `modules` ("numpy, torch").
function(onevit_python_imports python modules result)
  execute_process(COMMAND ${python} -c "import ${modules}" RESULT_VARIABLE failed OUTPUT_QUIET ERROR_QUIET)
  if(failed)
    set(${result} FALSE PARENT_SCOPE)
  else()
    set(${result} TRUE PARENT_SCOPE)
  endif()
endfunction()

set(_onevit_tool_modules "numpy, torch, torchvision, PIL")
if(NOT ONEVIT_PYTHON)
  set(_onevit_found "")
  foreach(candidate ${Python3_EXECUTABLE} /usr/bin/python3)
    if(EXISTS ${candidate})
      onevit_python_imports(${candidate} "${_onevit_tool_modules}" _onevit_has)
      if(_onevit_has)
        set(_onevit_found ${candidate})
        break()
      endif()
    endif()
  endforeach()
  if(_onevit_found)
    set(ONEVIT_PYTHON ${_onevit_found} CACHE FILEPATH
        "The Python that runs the converter and the tests (with ${_onevit_tool_modules})")
  else()
    # Not cached: found again once the packages are installed.
    set(ONEVIT_PYTHON ${Python3_EXECUTABLE})
    if(ONEVIT_BUILD_TESTS)
      message(WARNING "Neither ${Python3_EXECUTABLE} nor /usr/bin/python3 imports ${_onevit_tool_modules} "
                      "(Debian: .ci/install-deps): the converter and the Python-driven tests will fail; "
                      "-DONEVIT_PYTHON=... names a Python that has them")
    endif()
  endif()
endif()
message(STATUS "The module is built for ${Python3_EXECUTABLE}; the converter and tests run with ${ONEVIT_PYTHON}")

# pybind11 builds for the Python3 found above.
find_package(pybind11 CONFIG QUIET)
# Off in sanitizer builds by default: an instrumented extension needs the sanitizer runtime
# preloaded into an uninstrumented python3.
if(pybind11_FOUND AND Python3_Development.Module_FOUND AND NOT ONEVIT_SANITIZE AND NOT ONEVIT_FUZZ)
  set(_onevit_python_default ON)
else()
  set(_onevit_python_default OFF)
endif()
option(ONEVIT_BUILD_PYTHON "Build the Python module onevit (needs pybind11-dev, python3-dev)" ${_onevit_python_default})

if(ONEVIT_BUILD_PYTHON AND ONEVIT_BUILD_TESTS)
  set(ONEVIT_MODULE_TEST_PYTHON "")
  set(_onevit_module_modules "numpy, torch, PIL")
  onevit_python_imports(${Python3_EXECUTABLE} "${_onevit_module_modules}" _onevit_has)
  if(_onevit_has)
    set(ONEVIT_MODULE_TEST_PYTHON ${Python3_EXECUTABLE})
  else()
    set(_onevit_suffix_query "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "${_onevit_suffix_query}"
                    OUTPUT_VARIABLE _onevit_module_suffix OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${ONEVIT_PYTHON} -c "${_onevit_suffix_query}"
                    OUTPUT_VARIABLE _onevit_tool_suffix OUTPUT_STRIP_TRAILING_WHITESPACE)
    onevit_python_imports(${ONEVIT_PYTHON} "${_onevit_module_modules}" _onevit_has)
    if(_onevit_has AND _onevit_module_suffix STREQUAL _onevit_tool_suffix)
      set(ONEVIT_MODULE_TEST_PYTHON ${ONEVIT_PYTHON})
    else()
      if(_onevit_has)
        set(_onevit_other "${ONEVIT_PYTHON}, which has them, imports ${_onevit_tool_suffix} modules, not "
                          "${_onevit_module_suffix}")
      else()
        set(_onevit_other "neither does ${ONEVIT_PYTHON}")
      endif()
      string(CONCAT ONEVIT_MODULE_TEST_SKIP
             "skipped: the module is built for ${Python3_EXECUTABLE}, which does not import "
             "${_onevit_module_modules}, and " ${_onevit_other} ": install them there, or configure with "
             "-DPython3_EXECUTABLE=... naming a Python that has them")
      message(STATUS "The tests of the Python module: ${ONEVIT_MODULE_TEST_SKIP}")
    endif()
  endif()
  if(ONEVIT_MODULE_TEST_PYTHON)
    message(STATUS "The tests of the Python module run with ${ONEVIT_MODULE_TEST_PYTHON}")
  endif()
endif()

# add_test for a test that imports the module: COMMAND (after the interpreter) run by
# ONEVIT_MODULE_TEST_PYTHON, with ONEVIT_MODULE_PYTHON naming the Python the module is built for;
# else a test that says why it is skipped (exit status 77).
function(onevit_module_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "WORKING_DIRECTORY" "COMMAND;ENVIRONMENT")
  if(ONEVIT_MODULE_TEST_PYTHON)
    add_test(NAME ${name} COMMAND ${ONEVIT_MODULE_TEST_PYTHON} ${arg_COMMAND}
             WORKING_DIRECTORY ${arg_WORKING_DIRECTORY})
    list(APPEND arg_ENVIRONMENT ONEVIT_MODULE_PYTHON=${Python3_EXECUTABLE})
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${arg_ENVIRONMENT}")
  else()
    add_test(NAME ${name} COMMAND sh -c "echo \"$0\"; exit 77" "${name}: ${ONEVIT_MODULE_TEST_SKIP}")
  endif()
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
endfunction()
