#!/usr/bin/python3
"""The C++ API as a CMake user gets it: installs the build into a temporary
prefix, builds README.md's C++ example there with find_package(onevit) and
target_link_libraries(... onevit::onevit), and runs it on the bundled digits
model: its top-5 against `onevit classify`, its embedding and logit counts
against `onevit info`, and its errors (no arguments, a missing image) as
one line each. Also checks what is installed as the public API: exactly the
headers of PUBLIC_HEADERS, none naming the engine's internals (the cost model,
benchmark emulation), each compiling on its own.

    /usr/bin/python3 tests/cpp_api_test.py --onevit build/apps/onevit --build build
"""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
from harness import (TOOL_ENV, add_digits_arguments, argument_parser, classify_json,  # noqa: E402
                     digits_model_and_samples, exit_status, readme_block, resolve_onevit, run_tool, scratch_dir)

CMAKE_LISTS = """cmake_minimum_required(VERSION 3.25)
project(readme_example LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(onevit REQUIRED)
add_executable(example example.cpp)
target_compile_options(example PRIVATE -Wall -Wextra -Werror)
target_link_libraries(example PRIVATE onevit::onevit)
"""


# The public API: model, options, image, features/embedding, rollout, errors (and the C API).
PUBLIC_HEADERS = {"error.hpp", "image.hpp", "model.hpp", "model_info.hpp", "onevit.h", "onevit.hpp", "rollout.hpp"}
INTERNAL_WORDS = ("thread_plan", "ThreadPlan", "choose_thread_plan", "Emulate", "emulate_", "measure.hpp",
                  "matmul_peak", "Executor")


def check_installed_headers(prefix, cflags, failures):
    """The installed include/onevit: the public headers only, each self-contained."""
    (include,) = {p.parent.parent for p in prefix.glob("**/include/onevit/onevit.hpp")}
    installed = {p.name for p in (include / "onevit").iterdir()}
    if installed != PUBLIC_HEADERS:
        failures.append(f"installed headers {sorted(installed)}, want {sorted(PUBLIC_HEADERS)}")
    for name in sorted(installed):
        text = (include / "onevit" / name).read_text()
        leaked = [word for word in INTERNAL_WORDS if word in text]
        if leaked:
            failures.append(f"installed onevit/{name} names engine internals: {leaked}")
        compiler = ["gcc", "-x", "c", "-std=c99"] if name.endswith(".h") else ["g++", "-x", "c++", "-std=c++17"]
        proc = subprocess.run([*compiler, "-fsyntax-only", "-Wall", "-Wextra", "-Werror", *shlex.split(cflags),
                               f"-I{include}", "-"], input=f"#include <onevit/{name}>\n", capture_output=True,
                              text=True)
        if proc.returncode != 0:
            failures.append(f"onevit/{name} does not compile on its own:\n{proc.stderr[-2000:]}")
    print(f"installed headers: {', '.join(sorted(installed))}")


def run(program, *args):
    return subprocess.run([str(program), *args], capture_output=True, text=True, env=TOOL_ENV, timeout=300)


def main(argv=None):
    ap = argument_parser(__doc__, keep=True, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_digits_arguments(ap)
    ap.add_argument("--build", required=True, help="the build directory to install")
    ap.add_argument("--cmake", default="cmake", help="the cmake program")
    ap.add_argument("--cflags", default="", help="more compiler flags (the build's sanitizers)")
    args = ap.parse_args(argv)
    onevit = resolve_onevit(args.onevit, args.repo)
    model, samples = digits_model_and_samples(args, args.repo)
    failures = []

    with scratch_dir("onevit_cpp_api_", args.keep) as tmp:
        tmp = Path(tmp)
        prefix, source, build = tmp / "prefix", tmp / "example", tmp / "example" / "build"
        run_tool([args.cmake, "--install", args.build, "--prefix", str(prefix)], "cmake --install")
        check_installed_headers(prefix, args.cflags, failures)
        source.mkdir()
        (source / "example.cpp").write_text(readme_block(args.repo, "cpp"))
        (source / "CMakeLists.txt").write_text(CMAKE_LISTS)
        # _GLIBCXX_ASSERTIONS: bounds-checked operator[] without changing std::vector's ABI.
        flags = " ".join(["-D_GLIBCXX_ASSERTIONS", *shlex.split(args.cflags)])
        run_tool([args.cmake, "-S", str(source), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
                  f"-DCMAKE_CXX_FLAGS={flags}", f"-DCMAKE_EXE_LINKER_FLAGS={args.cflags}"], "cmake (example)")
        run_tool([args.cmake, "--build", str(build)], "cmake --build (example)")
        example = build / "example"

        expected = classify_json(run_tool([onevit, "classify", "--model", model, "--json", "--top", "5", samples[0]],
                                          "onevit classify"), failures, samples[:1])[samples[0]]
        info = run_tool([onevit, "info", model], "onevit info")
        dim = int(re.search(r"\bdim\s+(\d+)", info).group(1))
        classes = int(re.search(r"\bclasses\s+(\d+)", info).group(1))
        want = [f"{100 * p['prob']:5.1f}%  {p['label']}" for p in expected[:5]]
        want.append(f"embedding {dim} floats, {classes} logits")
        proc = run(example, model, samples[0])
        print(f"README C++ example (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}", end="")
        if proc.returncode != 0 or proc.stdout.splitlines() != want:
            failures.append(f"README C++ example: exit {proc.returncode}, stdout {proc.stdout!r}, "
                            f"stderr {proc.stderr!r}; want {want}")

        proc = run(example)
        if proc.returncode != 2 or not proc.stderr.startswith("usage: ") or proc.stderr.count("\n") != 1:
            failures.append(f"no arguments: exit {proc.returncode}, stderr {proc.stderr!r} (want 2 and usage)")
        missing = str(tmp / "missing.png")
        proc = run(example, model, missing)
        if proc.returncode != 1 or missing not in proc.stderr or proc.stderr.count("\n") != 1 or proc.stdout:
            failures.append(f"missing image: exit {proc.returncode}, stdout {proc.stdout!r}, stderr {proc.stderr!r} "
                            "(want 1 and one line naming it)")

    for failure in failures:
        print(f"FAIL: {failure}")
    print("FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
