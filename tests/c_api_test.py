#!/usr/bin/python3
"""The C API as a C programmer gets it: installs the build into a temporary
prefix, compiles C programs as C99 with `pkg-config --cflags --libs onevit`
from there (libonevit.so, and with --static libonevit.a), and checks what they
print against `onevit classify` and `onevit infer` on the bundled digits model.

    /usr/bin/python3 tests/c_api_test.py --onevit build/apps/onevit --build build

Programs: tests/c_api/c_api_check.c (results, and the error cases it checks
itself) and README.md's C example; and libonevit.so from Python's ctypes, as
any language's FFI would use it.
"""

import argparse
import ctypes
import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
from harness import (TOOL_ENV, add_digits_arguments, argument_parser,  # noqa: E402
                     classify_json, digits_model_and_samples, exit_status, parity, readme_block, resolve_onevit,
                     run_tool, scratch_dir)

import numpy as np  # noqa: E402

TOP_K = 3      # as c_api_check.c prints
RUN_BATCH = 2  # as c_api_check.c runs
# classify_file runs one image at a time, `onevit classify` a batch: the same
# float32 sums in another order can differ in the last bits.
PROB_TOL = 1e-5
C_FLAGS = ["-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror", "-pthread"]
README_FLAGS = ["-std=c99", "-Wall", "-Werror"]


def pkg_config(prefix, *args):
    """pkg-config's words for onevit as installed under prefix (and the system's .pc files)."""
    (pc,) = glob.glob(f"{prefix}/**/pkgconfig/onevit.pc", recursive=True)
    env = dict(TOOL_ENV, PKG_CONFIG_PATH=os.pathsep.join(filter(None, [os.path.dirname(pc),
                                                                      TOOL_ENV.get("PKG_CONFIG_PATH")])))
    proc = subprocess.run(["pkg-config", *args, "onevit"], capture_output=True, text=True, env=env, check=True)
    return shlex.split(proc.stdout)


def compile_c(cc, source, output, flags, link_words, extra_flags):
    run_tool([cc, *flags, *extra_flags, str(source), "-o", str(output), *link_words], f"{cc} {source.name}")


def fill_input(count):
    """c_api_check.c's fill_input."""
    i = np.arange(count, dtype=np.uint64)
    return ((i * 7919) % 256).astype(np.float32) / np.float32(128) - np.float32(1)


def check_program_output(stdout, expected, images, missing, infer_logits, failures):
    """c_api_check's stdout against `onevit classify --json`'s topk and `onevit infer`'s logits."""
    got, errors, logits = {}, {}, {}
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "logits":
            logits[int(fields[1]), int(fields[2])] = float(fields[3])
        elif fields[1] == "error":
            errors[fields[0]] = (int(fields[2]), fields[3])
        else:
            got.setdefault(fields[0], []).append({"index": int(fields[2]), "prob": float(fields[3]),
                                                  "label": fields[4]})
    for image in images:
        want, have = expected.get(image), got.get(image)
        if not want or not have or len(have) != TOP_K:
            failures.append(f"{image}: C API {have}, onevit classify {want}")
            continue
        for w, h in zip(want, have):
            if w["index"] != h["index"] or w["label"] != h["label"] or abs(w["prob"] - h["prob"]) > PROB_TOL:
                failures.append(f"{image}: C API {have}\n  onevit classify {want}")
                break
    status, message = errors.get(missing, (None, ""))
    if status != 2 or not message.startswith("onevit_model_classify_file: ") or missing not in message:
        failures.append(f"missing image {missing}: status {status}, message {message!r} (want 2 and the path)")
    c_logits = np.array([logits.get(k, np.nan) for k in np.ndindex(*infer_logits.shape)]).reshape(infer_logits.shape)
    p = parity(c_logits.astype(np.float32), infer_logits.astype(np.float64))
    print(f"onevit_model_run vs onevit infer: max |Δlogit| {p.diff:.3g} (tolerance {p.tol:.3g})")
    if not p.ok:
        failures.append(f"onevit_model_run's logits differ from onevit infer's: {p.diff} > {p.tol}, {p.worst}")


class Prediction(ctypes.Structure):
    _fields_ = [("index", ctypes.c_int), ("prob", ctypes.c_float), ("label", ctypes.c_char_p)]


class LoadOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("threads", ctypes.c_int), ("streams", ctypes.c_int),
                ("hint", ctypes.c_int), ("precision", ctypes.c_char_p), ("batch", ctypes.c_int)]


def check_ctypes_options(lib, model, failures):
    """The versioned options as an FFI fills them: zeros, struct_size, precision; then run_into."""
    lib.onevit_model_load_with_options.argtypes = [ctypes.c_char_p, ctypes.POINTER(LoadOptions),
                                                   ctypes.POINTER(ctypes.c_void_p)]
    lib.onevit_model_precision.argtypes = [ctypes.c_void_p]
    lib.onevit_model_precision.restype = ctypes.c_char_p
    lib.onevit_model_run_into.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                                          ctypes.POINTER(ctypes.c_float), ctypes.c_size_t]
    for name in ("input_shape", "output_size"):
        getattr(lib, f"onevit_model_{name}").argtypes = [ctypes.c_void_p] + [ctypes.POINTER(ctypes.c_int)] * (
            3 if name == "input_shape" else 0)
    options = LoadOptions(struct_size=ctypes.sizeof(LoadOptions), precision=b"bf16")
    handle = ctypes.c_void_p()
    if lib.onevit_model_load_with_options(model.encode(), ctypes.byref(options), ctypes.byref(handle)) != 0:
        failures.append(f"ctypes: onevit_model_load_with_options: {lib.onevit_last_error().decode()}")
        return
    precision = lib.onevit_model_precision(handle)
    shape = [ctypes.c_int() for _ in range(3)]
    lib.onevit_model_input_shape(handle, *[ctypes.byref(v) for v in shape])
    count = shape[0].value * shape[1].value * shape[2].value
    x = (ctypes.c_float * count)(*fill_input(count))
    out = (ctypes.c_float * lib.onevit_model_output_size(handle))()
    status = lib.onevit_model_run_into(handle, x, count, out, len(out))
    print(f"ctypes: load_with_options(bf16) runs at {precision}, run_into status {status}")
    if precision != b"bf16" or status != 0 or not np.isfinite(np.array(out)).all():
        failures.append(f"ctypes: precision {precision}, run_into status {status}: {lib.onevit_last_error()!r}")
    lib.onevit_model_free(handle)


def check_ctypes(library, model, image, expected, failures):
    """onevit_model_load / classify_file / last_error / free through ctypes."""
    lib = ctypes.CDLL(str(library))
    lib.onevit_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.onevit_model_classify_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                               ctypes.POINTER(Prediction)]
    lib.onevit_model_free.argtypes = [ctypes.c_void_p]
    lib.onevit_last_error.restype = ctypes.c_char_p
    handle = ctypes.c_void_p()
    if lib.onevit_model_load(model.encode(), None, ctypes.byref(handle)) != 0:
        failures.append(f"ctypes: onevit_model_load: {lib.onevit_last_error().decode()}")
        return
    top = (Prediction * TOP_K)()
    status = lib.onevit_model_classify_file(handle, image.encode(), TOP_K, top)
    got = [{"index": p.index, "label": p.label.decode(), "prob": p.prob} for p in top]
    print(f"ctypes: status {status}, {got}")
    if status != 0 or [(g["index"], g["label"]) for g in got] != [(e["index"], e["label"]) for e in expected] or \
            any(abs(g["prob"] - e["prob"]) > PROB_TOL for g, e in zip(got, expected)):
        failures.append(f"ctypes: status {status}, {got}; onevit classify {expected}")
    status = lib.onevit_model_classify_file(handle, image.encode(), 0, top)
    if status != 1 or b"top_k" not in lib.onevit_last_error():
        failures.append(f"ctypes: top_k 0 gave status {status}, {lib.onevit_last_error()!r}")
    lib.onevit_model_free(handle)
    check_ctypes_options(lib, model, failures)


def main(argv=None):
    ap = argument_parser(__doc__, keep=True, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_digits_arguments(ap)
    ap.add_argument("--build", required=True, help="the build directory to install")
    ap.add_argument("--cmake", default="cmake", help="the cmake program")
    ap.add_argument("--cflags", default="", help="more compiler flags (the build's sanitizers)")
    ap.add_argument("--cc", default="gcc", help="the C compiler (the build's, for its sanitizer runtime)")
    args = ap.parse_args(argv)
    onevit = resolve_onevit(args.onevit, args.repo)
    model, samples = digits_model_and_samples(args, args.repo, min_samples=2)
    extra = shlex.split(args.cflags)
    failures = []

    with scratch_dir("onevit_c_api_", args.keep) as tmp:
        tmp = Path(tmp)
        prefix = tmp / "prefix"
        run_tool([args.cmake, "--install", args.build, "--prefix", str(prefix)], "cmake --install")
        libdir = Path(glob.glob(f"{prefix}/**/libonevit.so", recursive=True)[0]).parent
        # No LD_LIBRARY_PATH: onevit.pc's rpath finds libonevit.so under this prefix.
        run_env = dict(TOOL_ENV)

        source = Path(args.repo, "tests", "c_api", "c_api_check.c")
        shared_words = pkg_config(prefix, "--cflags", "--libs")
        # --static names -lonevit too, which the linker resolves to the .so: ask for the archive.
        static_words = ["-l:libonevit.a" if w == "-lonevit" else w for w in pkg_config(prefix, "--static", "--cflags",
                                                                                      "--libs")]
        print("pkg-config --cflags --libs onevit:", " ".join(shared_words))
        print("pkg-config --static --cflags --libs onevit:", " ".join(static_words))
        programs = {"shared": tmp / "check_shared", "static": tmp / "check_static"}
        compile_c(args.cc, source, programs["shared"], C_FLAGS, shared_words, extra)
        compile_c(args.cc, source, programs["static"], C_FLAGS, static_words, extra)
        needed = run_tool(["readelf", "-d", str(programs["static"])], "readelf")
        if "libonevit" in needed:
            failures.append("the --static program still needs libonevit.so")
        dynamic = run_tool(["readelf", "-d", str(programs["shared"])], "readelf")
        rpaths = [os.path.realpath(d) for line in re.findall(r"R(?:UN)?PATH.*\[(.*)\]", dynamic)
                  for d in line.split(":")]
        if os.path.realpath(libdir) not in rpaths:
            failures.append(f"the shared program has no rpath to {libdir}:\n{dynamic}")

        classify = run_tool([onevit, "classify", "--model", model, "--json", "--top", str(TOP_K), *samples],
                            "onevit classify")
        expected = classify_json(classify, failures, samples)
        input_npy, output_npy = tmp / "input.npy", tmp / "logits.npy"
        info = run_tool([onevit, "info", model], "onevit info")
        height, width = (int(v) for v in re.search(r"image size\s+(\d+) x (\d+)", info).groups())
        channels = int(re.search(r"channels\s+(\d+)", info).group(1))
        np.save(input_npy, fill_input(RUN_BATCH * channels * height * width).reshape(RUN_BATCH, channels, height,
                                                                                      width))
        run_tool([onevit, "infer", "--model", model, "--input", str(input_npy), "--output", str(output_npy)],
                 "onevit infer")
        infer_logits = np.load(output_npy)

        missing = str(tmp / "missing.png")
        for kind, program in programs.items():
            proc = subprocess.run([str(program), model, *samples, missing], capture_output=True, text=True,
                                  env=run_env, timeout=300)
            print(f"{kind}: exit {proc.returncode}")
            if proc.returncode != 0:
                failures.append(f"{kind} c_api_check exit {proc.returncode}:\n{proc.stderr[-4000:]}")
            check_program_output(proc.stdout, expected, samples, missing, infer_logits, failures)

        if extra:
            print("ctypes: skipped (a sanitized libonevit.so cannot load into an uninstrumented Python)")
        else:
            check_ctypes(libdir / "libonevit.so", model, samples[0], expected[samples[0]], failures)

        example = tmp / "example.c"
        example.write_text(readme_block(args.repo, "c"))
        compile_c(args.cc, example, tmp / "example", README_FLAGS, shared_words, extra)
        proc = subprocess.run([str(tmp / "example"), model, samples[0]], capture_output=True, text=True, env=run_env,
                              timeout=300)
        top1 = expected[samples[0]][0]
        print(f"README example:\n{proc.stdout}", end="")
        if proc.returncode != 0 or f"{100 * top1['prob']:5.1f}%  {top1['label']}" not in proc.stdout.splitlines()[0]:
            failures.append(f"README example: exit {proc.returncode}, stdout {proc.stdout!r}, stderr "
                            f"{proc.stderr!r}; want top-1 {top1}")
        proc = subprocess.run([str(tmp / "example")], capture_output=True, text=True, env=run_env, timeout=300)
        if proc.returncode != 2 or not proc.stderr.startswith("usage: ") or proc.stderr.count("\n") != 1:
            failures.append(f"README example without arguments: exit {proc.returncode}, stderr {proc.stderr!r} "
                            "(want 2 and a usage line)")

    for failure in failures:
        print(f"FAIL: {failure}")
    print("FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
