#!/usr/bin/python3
"""The pretrained DeiT-tiny on real photos: onevit against the reference pipeline,
at every precision and for every stored weight type, each property checked once.

Photos: ../shared/data/images/ (18 photos of assorted sizes and sources) and
../shared/data/imagenet-sample/ (250 ImageNet photos, one per class for every
fourth class; the class is the WordNet-id prefix of the file name, its index the
id's line in labels/synset_words.txt).

  1. The reference pipeline, independent of onevit: PIL open -> RGB ->
     Resize(256, bicubic) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet)
     -> tests/reference/vit_reference.py in float64, from the safetensors file.
     Its top-1 on the ImageNet sample must be the 83.2 % the data's README states.
  2. `weights/convert.py --dtype f32|bf16|int8`: three files of the same model
     (labels: labels/imagenet_classes.txt).
  3. `onevit classify --json --top 5 --precision P` of every photo, with
     ONEDNN_VERBOSE=2, for the f32 file at f32, bf16 and int8, and the bf16 and
     int8 files at f32 and at their own precision:
     - no run creates a oneDNN reference implementation (`ref...`);
     - the f32 file at f32, on every photo: the reference's top-1 class, its
       probability within PROB_TOL, and the labels file's name for that class;
     - precision P of TARGETS, on the f32 file and on the file stored in P:
       top-1 accuracy on the ImageNet sample within TARGETS[P] points of the
       f32 file's at f32, and top-1 agreement with the same file at f32 at
       least TARGETS[P]'s, on the ImageNet sample and on images/ each.
  4. `onevit eval --top5` of the f32 file on the ImageNet sample: every photo
     evaluated, the reference's top-1, and the top-5 that classify's lists give.
  5. Every file at f32 (`onevit infer` on the first 16 ImageNet photos,
     preprocessed by the reference pipeline):
     - against the float64 reference built from that file's own weights as
       FORMAT.md defines their values (bf16 widened, q × scale): within the
       parity bound, so widening at load is exact;
     - against the f32 file's logits: within the error of the stored weights,
       DEQUANT_TOL × max(1, max|logit|) (see DEQUANT_TOL).

Usage:
    /usr/bin/python3 tests/accuracy_test.py --onevit build/apps/onevit [--data DIR]
The data directory defaults to $ONEVIT_DATA, else <repo>/../shared/data.
Exit status: 0 pass, 1 a check failed, 2 a tool failed, 77 data not found (skip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (TOOL_ENV, ToolError, argument_parser, classify_json, exit_status,  # noqa: E402
                     onednn_implementations, parity, report, resolve_converter, resolve_onevit, run_tool,
                     scratch_dir, set_torch_threads, top1_problems)  # before torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

import safetensors_io  # noqa: E402
import vit_reference  # noqa: E402
from shared_photos import (SKIP, add_data_argument, data_dir, find_photos, float64_logits,  # noqa: E402
                           reference_batch)

README_TOP1 = 0.832          # ../shared/data/README.md, the reference pipeline's top-1
PROB_TOL = 1e-2              # top-1 probability: onevit decodes and resizes on its own, within a grey level of PIL
TOP = 5
PARITY_PHOTOS = 16           # photos run through every stored weight type at f32
# Logits of a bf16/int8 file at f32 against the f32 file's, × max(1, max|logit|).
# Each stored weight is off by at most 2^-8 of itself (bf16) or half a step,
# max|row|/254 (int8); through 12 blocks this moves DeiT-tiny's logits (max
# |logit| ~ 15) by measured 0.46e-2 (bf16) and 1.57e-2 (int8) of max|logit| on
# these photos. The bounds leave about 3x and 2.5x room.
DEQUANT_TOL = {"bf16": 1.5e-2, "int8": 4e-2}
# Issue 11's accuracy targets: (top-1 points from f32 at most, top-1 agreement at least).
TARGETS = {"bf16": (0.4, 0.98), "int8": (1.2, 0.95)}


def classify(onevit: str, ovit: str, precision: str, photos: list[str], failures: list[str]) -> dict:
    """{photo: topk} from `onevit classify --json`; the oneDNN reference
    implementations the run created go to failures."""
    env = dict(TOOL_ENV, ONEDNN_VERBOSE="2")
    proc = subprocess.run([onevit, "classify", "--model", ovit, "--top", str(TOP), "--json", "--precision",
                           precision, *photos], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise ToolError(f"onevit classify --precision {precision} failed: {proc.stderr.strip()[:500]}")
    json_text, impls = onednn_implementations(proc.stdout)
    refs = {impl for impl in impls if impl.split()[-1].startswith("ref")}
    if refs:
        failures.append(f"{os.path.basename(ovit)} at {precision}: oneDNN reference implementations created: "
                        f"{sorted(refs)}")
    results = classify_json(json_text, failures, photos)
    missing = [p for p in photos if p not in results]
    if missing:
        failures.append(f"{os.path.basename(ovit)} at {precision}: no result for {missing[:5]}")
    return results


def top1(results: dict, photos: list[str]) -> np.ndarray:
    return np.array([results[p][0]["index"] if p in results else -1 for p in photos])


def eval_json(onevit: str, model: str, synsets: str, photos_dir: str, *args: str):
    """`onevit eval --json` as a dict, or the stderr of a refusal."""
    cmd = [onevit, "eval", "--model", model, "--synsets", synsets, "--json", *args, photos_dir]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=TOOL_ENV)
    if proc.returncode != 0:
        return None, proc.stderr.strip()
    return json.loads(proc.stdout), ""


def main(argv=None) -> int:
    ap = argument_parser("DeiT-tiny on real photos, per precision and stored dtype", keep=True)
    add_data_argument(ap)
    args = ap.parse_args(argv)

    repo = os.path.abspath(args.repo)
    data = data_dir(args, repo)
    ckpt = os.path.join(data, "deit_tiny_patch16_224", "model.safetensors")
    labels_file = os.path.join(data, "labels", "imagenet_classes.txt")
    synsets = os.path.join(data, "labels", "synset_words.txt")
    photos_dir = os.path.join(data, "imagenet-sample")
    images_dir = os.path.join(data, "images")
    missing = [p for p in (ckpt, labels_file, synsets, photos_dir, images_dir) if not os.path.exists(p)]
    if missing:
        print(f"SKIP: shared data not found: {', '.join(missing)}")
        return SKIP
    onevit = resolve_onevit(args.onevit, repo)
    convert = resolve_converter(repo)
    with open(labels_file, encoding="utf-8") as f:
        labels = [line.strip() for line in f if line.strip()]
    with open(synsets, encoding="utf-8") as f:
        wordnet_ids = [line.split()[0] for line in f if line.strip()]
    sample = sorted(os.path.join(photos_dir, f) for f in os.listdir(photos_dir)
                    if f.lower().endswith((".jpeg", ".jpg", ".png")))
    truth = np.array([wordnet_ids.index(os.path.basename(p).split("_")[0]) for p in sample])
    others = find_photos(images_dir)
    photos = sample + others
    sets = {"the ImageNet sample": slice(0, len(sample)), "images/": slice(len(sample), len(photos))}
    set_torch_threads(8)
    failures = []

    # 1. The reference pipeline.
    x = reference_batch(photos)
    reference = vit_reference.from_timm_state_dict(safetensors_io.load_torch(ckpt), num_heads=3, eps=1e-6,
                                                   gelu="erf", dtype=torch.float64)
    if reference.cfg.num_classes != len(labels):
        failures.append(f"{len(labels)} labels for {reference.cfg.num_classes} classes")
        return report(failures, "DeiT-tiny on real photos", "")
    ref_probs = vit_reference.softmax(float64_logits(reference, x))
    del reference
    ref_top1 = ref_probs.argmax(axis=1)
    ref_correct = int((ref_top1[sets["the ImageNet sample"]] == truth).sum())
    print(f"reference pipeline (PIL + float64 PyTorch): top-1 {ref_correct}/{len(sample)} "
          f"= {100 * ref_correct / len(sample):.1f} % on the ImageNet sample")
    if round(ref_correct / len(sample), 3) != README_TOP1:
        failures.append(f"the reference pipeline's top-1 is {ref_correct}/{len(sample)}, the data's README "
                        f"says {100 * README_TOP1:.1f} %")

    with scratch_dir("onevit_accuracy_", args.keep) as tmp:
        # 2. Three files of one model.
        files = {}
        for dtype in ("f32", "bf16", "int8"):
            files[dtype] = os.path.join(tmp, f"deit_tiny_{dtype}.ovit")
            run_tool([sys.executable, convert, ckpt, "--arch", "deit_tiny_patch16_224", "--labels", labels_file,
                      "--dtype", dtype, "-o", files[dtype]], "convert.py")
        print("files: " + ", ".join(f"{d} {os.path.getsize(p):,} bytes" for d, p in files.items()))

        # 3. classify: the f32 file against the reference, photo by photo.
        f32 = classify(onevit, files["f32"], "f32", photos, failures)
        agreeing = 0
        for i, path in enumerate(photos):
            _, problems = top1_problems(f32.get(path), ref_probs[i], labels, prob_tol=PROB_TOL, top=TOP)
            agreeing += not problems
            failures += [f"{os.path.relpath(path, data)}: {p}" for p in problems]
        print(f"f32 file at f32: the reference's top-1 (probability within {PROB_TOL}) on {agreeing}/{len(photos)} "
              f"photos")
        f32_top1 = top1(f32, photos)
        f32_correct = int((f32_top1[sets["the ImageNet sample"]] == truth).sum())

        # 3. classify: bf16 and int8, against the same file at f32.
        for precision, (points, agreement) in TARGETS.items():
            for file_dtype in ("f32", precision):
                what = f"{file_dtype} file at {precision}"
                baseline = f32_top1 if file_dtype == "f32" else top1(
                    classify(onevit, files[file_dtype], "f32", photos, failures), photos)
                got = top1(classify(onevit, files[file_dtype], precision, photos, failures), photos)
                correct = int((got[sets["the ImageNet sample"]] == truth).sum())
                drop = 100 * abs(correct - f32_correct) / len(sample)
                line = f"{what}: top-1 {100 * correct / len(sample):.1f} % on the ImageNet sample"
                if drop > points + 1e-9:
                    failures.append(f"{what}: top-1 {100 * correct / len(sample):.1f} % is {drop:.1f} points from "
                                    f"the f32 file's {100 * f32_correct / len(sample):.1f} % (at most {points})")
                for name, part in sets.items():
                    agreed = float((got[part] == baseline[part]).mean())
                    line += f"; agreement with f32 {100 * agreed:.1f} % on {name}"
                    if agreed < agreement:
                        failures.append(f"{what}: top-1 agreement with f32 {100 * agreed:.1f} % < "
                                        f"{100 * agreement:.0f} % on {name}")
                print(line)

        # 4. eval.
        result, error = eval_json(onevit, files["f32"], synsets, photos_dir, "--top5")
        if result is None:
            failures.append(f"onevit eval at f32 failed: {error}")
        else:
            top5_correct = sum(t in [e["index"] for e in f32[p][:5]] for p, t in zip(sample, truth) if p in f32)
            print(f"onevit eval, f32: top-1 {100 * result['top1']:.1f} %, top-5 {100 * result['top5']:.1f} % "
                  f"({result['images']} photos, {result['failed']} failed)")
            if result["images"] != len(sample) or result["failed"] != 0:
                failures.append(f"onevit eval: {result['images']} evaluated, {result['failed']} failed, "
                                f"of {len(sample)} photos")
            if round(result["top1"] * result["images"]) != ref_correct:
                failures.append(f"onevit eval: top-1 {result['top1']:.4f}, the reference pipeline's "
                                f"{ref_correct}/{len(sample)}")
            if round(result["top5"] * result["images"]) != top5_correct:
                failures.append(f"onevit eval: top-5 {result['top5']:.4f}, classify's top-5 lists "
                                f"{top5_correct}/{len(sample)}")

        # 5. Every stored dtype at f32.
        inp, out = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
        np.save(inp, x[:PARITY_PHOTOS].numpy())
        logits = {}
        print(f"{'file':<8}{'vs its own float64 reference':>30}{'vs the f32 file':>20}{'bound':>10}")
        for dtype, path in files.items():
            run_tool([onevit, "infer", "--model", path, "--input", inp, "--output", out, "--precision", "f32"],
                     "onevit infer")
            logits[dtype] = np.load(out)
            own = parity(logits[dtype], float64_logits(vit_reference.from_ovit(path)[0], x[:PARITY_PHOTOS]))
            if not own.ok:
                failures.append(f"{dtype} file at f32: max|Δ| {own.diff:.3e} from the float64 reference of its "
                                f"own weights > {own.tol:.3e} ({own.worst})")
            line = f"{dtype:<8}{own.diff:>19.2e} (≤{own.tol:.0e})"
            if dtype != "f32":
                scale = max(1.0, float(np.abs(logits["f32"]).max()))
                moved = float(np.abs(logits[dtype] - logits["f32"]).max()) / scale
                line += f"{moved:>15.2e} × max{DEQUANT_TOL[dtype]:>9.0e}"
                if not moved <= DEQUANT_TOL[dtype]:
                    failures.append(f"{dtype} file at f32: logits moved {moved:.3e} × max(1, max|logit|) from the "
                                    f"f32 file's, more than {DEQUANT_TOL[dtype]}")
            print(line)

    return report(failures, "DeiT-tiny on real photos", "f32 equals the reference pipeline photo by photo; "
                  "no reference kernels; every stored dtype within its bound at f32; bf16 and int8 within their "
                  "targets")


if __name__ == "__main__":
    sys.exit(exit_status(main))
