#!/usr/bin/python3
"""Each engine's int8 (and bf16) accuracy beside onevit's, on the 250 labelled photos.

    bench/peers/accuracy.py [--model ../shared/data/deit_tiny_patch16_224/model.safetensors
                             --arch deit_tiny_patch16_224] [--engines ...] [--calibration-from crops|halves]

Every engine gets the same inputs: onevit's preprocessing of ../shared/data/imagenet-sample
(onevit_inputs.py). Per engine and configuration (batch 8): top-1 against the labels (the WordNet
id in each file name, indexed by labels/synset_words.txt), top-1 agreement with that engine's own
f32, and with the float64 PyTorch reference. Calibration never sees an evaluation photo:
  crops   (default) 300 augmented views (random crops, mirrored) of the 18 photos in
          ../shared/data/images, none of which is in the evaluation set; all 250 are evaluated.
  halves  2-fold: quantize on the even-numbered photos (onevit's preprocessing, no augmentation),
          evaluate on the odd ones, and the other way round; each photo's int8 prediction comes
          from a model calibrated on the other half. (onevit's int8 needs no calibration: its
          activation scales are computed per row at run time.)
A table goes to stdout, then one JSON line per engine and configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers_env  # noqa: E402

peers_env.use_peers_venv()

import numpy as np  # noqa: E402

import compare  # noqa: E402
import engine_onevit  # noqa: E402
import peer_models  # noqa: E402

BATCH = 8


def labels_of(photos: list[str], synsets_path: str) -> np.ndarray:
    with open(synsets_path) as f:
        index = {line.split()[0]: i for i, line in enumerate(f) if line.strip()}
    return np.array([index[os.path.basename(p).split("_")[0]] for p in photos])


def reference_logits(prepared: peer_models.Prepared, inputs: str) -> np.ndarray:
    import torch
    module = peer_models.build_module(prepared.spec, prepared.dir).double()
    x = np.load(inputs)
    with torch.no_grad():
        return np.concatenate([module(torch.from_numpy(x[i:i + 25]).double()).numpy() for i in range(0, len(x), 25)])


def start(name: str, prepared, args):
    if name == "onevit":
        return engine_onevit.Client(args.onevit, prepared, args.threads, [BATCH])
    return compare.WorkerClient(name, prepared, args.threads, [BATCH])


def predictions(client, cell, inputs: str) -> np.ndarray | str:
    answer = client.request("logits", cell, input=inputs)
    if "logits" not in answer:
        return answer.get("skipped") or answer.get("error")
    return np.load(answer["logits"]).argmax(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--model", default=os.path.join(peer_models.SHARED, "data", "deit_tiny_patch16_224",
                                                    "model.safetensors"))
    ap.add_argument("--arch", default="deit_tiny_patch16_224")
    ap.add_argument("--engines", default=",".join(compare.ENGINES))
    ap.add_argument("--calibration-from", choices=("crops", "halves"), default="crops")
    ap.add_argument("--calibration", type=int, default=300, help="augmented views, for --calibration-from crops")
    compare.add_common_arguments(ap)
    args = ap.parse_args(argv)
    compare.resolve_onevit(args)
    engines = [e for e in args.engines.split(",") if e]
    evaluation, others = peer_models.photo_sets(args.photos)
    if not evaluation or not others:
        print(f"accuracy.py: no photos under {args.photos} (imagenet-sample/ and images/)", file=sys.stderr)
        return 1
    compare.pin(args.threads)
    try:
        spec = peer_models.parse_model(args.model, args.arch)
        prepared = peer_models.prepare(spec, args.work, args.build, args.photos, args.calibration,
                                       need_onnx=any(e in engines for e in ("openvino", "onnxruntime")))
    except peer_models.ModelError as e:
        print(f"accuracy.py: {e}", file=sys.stderr)
        return 1
    inputs = os.path.join(prepared.dir, "evaluation.npy")
    if not os.path.exists(inputs):
        peer_models.onevit_inputs(args.build, prepared.ovit, inputs, evaluation)
    labels = labels_of(evaluation, os.path.join(args.photos, "labels", "synset_words.txt"))
    reference = reference_logits(prepared, inputs).argmax(1)
    # (calibration file, the photos evaluated with it): one fold, or two halves
    if args.calibration_from == "crops":
        folds = [(prepared.calibration, np.arange(len(evaluation)))]
    else:
        folds = []
        for half in (0, 1):
            calibrate_on = np.arange(half, len(evaluation), 2)
            path = os.path.join(prepared.dir, f"calibration_half{half}.npy")
            if not os.path.exists(path):
                np.save(path, np.load(inputs)[calibrate_on])
            folds.append((path, np.arange(1 - half, len(evaluation), 2)))
    rows = []
    for name in engines:
        results: dict[tuple, np.ndarray | str] = {}
        version = ""
        for calibration, evaluated in folds:
            client = start(name, dataclasses.replace(prepared, calibration=calibration), args)
            if client.unavailable:
                print(f"{name}: skipped: {client.unavailable}", file=sys.stderr)
                client.close()
                break
            version = client.version
            for cell in [c for c in client.cells if c[2] == BATCH]:
                if cell[1] == "throughput" or (cell[0] != "int8" and calibration != folds[0][0]):
                    continue  # same numbers as latency; f32/bf16 need no calibration
                got = predictions(client, cell, inputs)
                if isinstance(got, str):
                    results[cell] = got
                elif not isinstance(results.get(cell), str):
                    merged = results.setdefault(cell, np.full(len(evaluation), -1))
                    merged[evaluated if cell[0] == "int8" else slice(None)] = \
                        got[evaluated] if cell[0] == "int8" else got
            client.close()
        f32 = next((v for c, v in results.items() if c[0] == "f32" and not isinstance(v, str)), None)
        for (precision, config, _), got in results.items():
            row = {"kind": "accuracy", "model": spec.label, "engine": name, "version": version,
                   "precision": precision, "config": config, "images": len(evaluation),
                   "calibration": args.calibration_from if precision == "int8" and name != "onevit" else "none"}
            if isinstance(got, str):
                row["skipped"] = got
            else:
                row.update(top1=float((got == labels).mean()), agreement_f32=float((got == f32).mean()),
                           agreement_reference=float((got == reference).mean()))
            rows.append(row)
    print(f"{spec.label} on {len(evaluation)} photos; reference (PyTorch float64) top-1 "
          f"{(reference == labels).mean():.3f}; int8 calibration: {args.calibration_from}")
    print(f"{'engine':<12} {'precision':<9} {'config':<11} {'top-1':>6} {'agree f32':>9} {'agree ref':>9}")
    for r in rows:
        figures = (f"{r['top1']:6.3f} {r['agreement_f32']:9.3f} {r['agreement_reference']:9.3f}" if "top1" in r
                   else "  " + r["skipped"])
        print(f"{r['engine']:<12} {r['precision']:<9} {r['config']:<11} {figures}")
    compare.emit_json_lines(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
