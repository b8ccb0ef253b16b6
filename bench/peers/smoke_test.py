#!/usr/bin/python3
"""The peer harness's own test: a tiny random ViT through every engine installed here.

    /usr/bin/python3 bench/peers/smoke_test.py [--onevit build/apps/onevit] [--keep]

Runs compare.py on `random:test@96` (a 2-block, width-64 ViT made at 224 and run at 96x96, so the
position embedding's resampling is checked too: convert.py's against the peers'; 16 calibration
views) at batch 2 with one short round, in a fresh work directory, and checks each cell's JSON line: every cell of every
installed engine ran (or says why the engine cannot run that configuration here: e.g. torch.compile
under PyTorch 1.x) and its logits match the float64 PyTorch reference within its precision's bound
(relative to max(1, max|logit|)): a mis-exported model, wrong weights or a wrong input differ by
the logits' whole scale. An engine that is not installed (CI does not install the peers; see
bench/peers/setup.sh) is skipped with a message. No timing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BOUNDS = {"f32": 1e-3, "bf16": 5e-2, "int8": 0.25}  # max|Δlogit| ÷ max(1, max|logit|)


def problems_of(records: list[dict]) -> tuple[list[str], list[str], int]:
    """(problems, notes, cells that passed) over compare.py's JSON lines."""
    problems, notes, passed = [], [], 0
    for r in records:
        if r["kind"] == "engine":
            notes.append(f"SKIP {r['engine']}: {r['unavailable']}")
            continue
        if r["kind"] != "cell":
            continue
        where = f"{r['engine']} {r['precision']}/{r['config']} batch {r['batch']}"
        if "skipped" in r:
            notes.append(f"SKIP {where}: {r['skipped']}")
        elif "error" in r:
            problems.append(f"{where}: {r['error']}")
        else:
            bound = BOUNDS[r["precision"]] * max(1.0, r["max_abs_logit"])
            found = len(problems)
            if not r["max_abs_dlogit"] <= bound:
                problems.append(f"{where}: max|Δlogit| {r['max_abs_dlogit']:.4g} > {bound:.4g}")
            if not r.get("images_per_s", 0) > 0:
                problems.append(f"{where}: no timing")
            passed += len(problems) == found
    return problems, notes, passed


def needed_efficiency_problems() -> list[str]:
    """compare.py's 'efficiency onevit needs' against one worked by hand: 5 GFLOP an image (0.5 of a
    100 GFLOP/s peak at 10 images/s), a peer at 10 images/s, a 1.1x target: 1.1 * 10 * 5 / 100."""
    os.environ["ONEVIT_PEERS_NO_VENV"] = "1"  # import it here, not re-run in the peers' venv
    sys.path.insert(0, HERE)
    import compare  # noqa: E402

    ours = {"rounds": [{"efficiency": 0.5, "peak_gflops": 100.0, "images_per_s": 10.0}]}
    got = compare.needed_efficiency(ours, {"images_per_s": 10.0}, 1.1)
    return [] if got is not None and abs(got - 0.55) < 1e-9 else [f"needed_efficiency gave {got}, not 0.55"]


def kernel_count_problems() -> list[str]:
    """engine_torch's reading of Inductor's output code, on a line of each wrapper: a PT2E model whose
    linears fell back to f32 must not count as int8 (skipped without PyTorch)."""
    try:
        import engine_torch  # noqa: E402  (sys.path has HERE: needed_efficiency_problems)
    except ImportError:
        return []
    cases = {  # output code -> (onednn_int8, float_linear_conv, float_bmm)
        "buf3 = torch.ops.onednn.qlinear_pointwise.tensor(buf2, 0.02, 128, _frozen_param4)\n"
        "extern_kernels.bmm(buf5, buf6, out=buf7)": (1, 0, 1),
        "# Source Nodes: [linear], Original ATen: [onednn.qlinear_pointwise]\n"
        "extern_kernels.addmm(arg1, buf2, _frozen_param3, alpha=1, beta=1, out=buf4)": (0, 1, 0),
        "// Original ATen: [onednn.qlinear_pointwise, aten.addmm]\n"
        "AOTI_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu__qlinear_pointwise_binary_tensor(buf2, x));\n"
        "AOTI_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_addmm_out(buf4, arg1, buf2, w, 1, 1));": (1, 1, 0),
    }
    problems = []
    for code, want in cases.items():
        got = engine_torch.kernel_counts(code)
        if tuple(got.values()) != want:
            problems.append(f"kernel_counts gave {got} for {code!r}, not {want}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="onevit-peers-smoke-")
    try:
        proc = subprocess.run(
            [sys.executable, os.path.join(HERE, "compare.py"), "--model", "random:test@96", "--onevit", args.onevit,
             "--build", os.path.dirname(os.path.dirname(os.path.abspath(args.onevit))), "--work", work,
             "--batch", "2", "--rounds", "1", "--warmup", "1", "--iters", "2", "--max-seconds", "0.2",
             "--calibration", "16"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode:
            print(f"FAIL: compare.py exited {proc.returncode}\n{proc.stderr[-4000:]}")
            return 1
        records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        print("\n".join(line for line in proc.stdout.splitlines() if not line.startswith("{")))
        problems, notes, passed = problems_of(records)
        problems += needed_efficiency_problems()
        problems += kernel_count_problems()
        engines = {r["engine"] for r in records if r["kind"] == "cell" and "max_abs_dlogit" in r}
        if "onevit" not in engines:
            problems.append("no onevit cell ran")
        print("\n".join(notes))
        for p in problems:
            print(f"FAIL: {p}")
        print(f"cells of {', '.join(sorted(engines))}:")
        print(f"{passed} passed, {len(problems)} failed")
        return 1 if problems else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
