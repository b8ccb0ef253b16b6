#!/usr/bin/python3
"""End-to-end checks of the `onevit` program: exit codes, one-line errors,
the .npy and JSON it writes, and how `classify` copes with bad images.

    /usr/bin/python3 tests/cli_test.py --onevit build/apps/onevit

Uses the bundled model weights/digits_vit.ovit and the images
weights/samples/*.png (override with --model / --samples), and temporary files.
"""

import argparse
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
from harness import (TOOL_ENV, add_digits_arguments, argument_parser,  # noqa: E402
                     digits_model_and_samples, resolve_onevit)

import numpy as np  # noqa: E402

# What a command prints when it skips files of other types in a directory it was given.
NOTE = "onevit: note: skipped {} in the directories given: not .jpg, .jpeg, .png, .webp, .bmp, .tif or .tiff\n"
SUBCOMMANDS = ["info", "infer", "classify", "embed", "explain", "eval", "bench"]


class Skip(Exception):
    """Raised by a test that does not apply to the model or samples in use."""


class Context:
    def __init__(self, onevit, model, samples, tmp, repo):
        self.onevit = onevit
        self.model = model
        self.samples = samples  # sorted .png paths
        self.tmp = tmp
        self.repo = repo

    def run(self, *args):
        return subprocess.run([self.onevit, *map(str, args)], capture_output=True, text=True, timeout=300,
                              env=TOOL_ENV)

    def info_value(self, name):
        """A value from `onevit info`, e.g. info_value("channels") -> "3"."""
        result = self.run("info", self.model)
        expect_success(result)
        for line in result.stdout.splitlines():
            key, _, value = line.strip().partition("  ")
            if key == name:
                return value.strip()
        raise AssertionError(f"`onevit info` has no {name!r} row:\n{result.stdout}")

    def input_shape(self):
        height, width = (int(v) for v in self.info_value("image size").split(" x "))
        return int(self.info_value("channels")), height, width


def describe(result):
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"


def expect_success(result):
    assert result.returncode == 0, describe(result)
    assert result.stderr == "", describe(result)


def expect_one_line_error(result, exit_code, *fragments):
    """Failed with `exit_code` and one stderr line `onevit: error: ...` containing each fragment."""
    assert result.returncode == exit_code, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("onevit: error: "), describe(result)
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in the message\n{describe(result)}"


def json_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_topk(record, k):
    topk = record["topk"]
    assert len(topk) == k, record
    for entry in topk:
        assert set(entry) == {"index", "label", "prob"}, entry
        assert isinstance(entry["index"], int) and isinstance(entry["label"], str), entry
        assert 0.0 <= entry["prob"] <= 1.0, entry
    probs = [entry["prob"] for entry in topk]
    assert probs == sorted(probs, reverse=True), record
    assert sum(probs) <= 1.0 + 1e-5, record


# --- the tests: each takes the Context and raises AssertionError on failure ---


def test_no_arguments(ctx):
    expect_one_line_error(ctx.run(), 2)


def test_unknown_subcommand(ctx):
    expect_one_line_error(ctx.run("frobnicate"), 2, "frobnicate")


def test_help_and_version(ctx):
    for args in [["--help"], *([name, "--help"] for name in SUBCOMMANDS)]:
        result = ctx.run(*args)
        expect_success(result)
        assert "Usage:" in result.stdout, describe(result)
    result = ctx.run("--version")
    expect_success(result)
    assert result.stdout.startswith("onevit "), describe(result)


def test_info(ctx):
    result = ctx.run("info", ctx.model)
    expect_success(result)
    for row in ["family", "image size", "channels", "patch size", "dim", "depth", "heads", "head dim",
                "mlp dim", "classes", "prefix tokens", "LayerNorm eps", "GELU", "attention scale",
                "qkv bias", "pooling", "head", "parameters", "resize", "interpolation", "mean", "std",
                "labels"]:
        assert ctx.info_value(row), row
    assert "," in ctx.info_value("parameters") or int(ctx.info_value("parameters")) < 1000


def test_info_features(ctx):
    """info lists a version 2 file's features, with what RoPE and attention pooling read; a classic ViT none."""
    assert ctx.info_value("features") == "none", ctx.info_value("features")
    fixture = Path(ctx.repo) / "tests" / "fixtures" / "modern"
    for variant, features in [
            ("dinov3-small", "no_pos_embed, rope (half layout, one table)"),
            ("rope-mixed", "no_pos_embed, rope (interleaved layout, a table per block)"),
            ("pe-core-pool-heads",  # timm: attn_pool_num_heads 8, mlp_ratio 4 on embed_dim 48, pooling every token
             "rope (interleaved layout, one table), attn_pool_shape (8 heads, mlp 192, over the prefix too)")]:
        model = ctx.tmp / f"{variant}.ovit"
        converted = subprocess.run([sys.executable, str(Path(ctx.repo) / "weights" / "convert.py"),
                                    str(fixture / variant / "model.safetensors"), "--config",
                                    str(fixture / variant / "config.json"), "-o", str(model)],
                                   capture_output=True, text=True)
        assert converted.returncode == 0, converted.stderr
        result = ctx.run("info", model)
        expect_success(result)
        shown = re.search(r"^  features +(.*)$", result.stdout, re.M)
        assert shown and shown.group(1) == features, describe(result)


def test_missing_model_file(ctx):
    missing = ctx.tmp / "no_such_model.ovit"
    for args in [["info", missing],
                 ["classify", "--model", missing, ctx.samples[0]],
                 ["bench", "--model", missing, "--iters", "1"]]:
        expect_one_line_error(ctx.run(*args), 1, str(missing))


def test_garbage_model_file(ctx):
    garbage = ctx.tmp / "garbage.ovit"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    expect_one_line_error(ctx.run("info", garbage), 1, str(garbage))


def test_truncated_model_file(ctx):
    """A model file cut short says so, with its size and the size its header needs."""
    whole = Path(ctx.model).read_bytes()
    data_offset = int.from_bytes(whole[16:24], "little")
    for length, needs in [(20, "the header needs at least 32"), (data_offset - 100, f"the header needs {data_offset}")]:
        cut = ctx.tmp / f"cut_{length}.ovit"
        cut.write_bytes(whole[:length])
        expect_one_line_error(ctx.run("info", cut), 1, str(cut), f"truncated ({length} bytes, {needs})")
    cut = ctx.tmp / "cut_data.ovit"
    cut.write_bytes(whole[:len(whole) - 1000])
    expect_one_line_error(ctx.run("info", cut), 1, f"truncated ({len(whole) - 1000} bytes, tensor ")


def test_infer_writes_logits(ctx):
    shape = ctx.input_shape()
    classes = int(ctx.info_value("classes"))
    images = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    np.save(ctx.tmp / "batch.npy", images)
    np.save(ctx.tmp / "single.npy", images[1:2])

    expect_success(ctx.run("infer", "--model", ctx.model, "--input", ctx.tmp / "batch.npy",
                           "--output", ctx.tmp / "batch_logits.npy"))
    expect_success(ctx.run("infer", "--model", ctx.model, "--input", ctx.tmp / "single.npy",
                           "--output", ctx.tmp / "single_logits.npy"))
    raw = (ctx.tmp / "batch_logits.npy").read_bytes()
    assert raw[:8] == b"\x93NUMPY\x01\x00", raw[:8]
    assert (10 + int.from_bytes(raw[8:10], "little")) % 64 == 0, "data not aligned to 64"
    logits = np.load(ctx.tmp / "batch_logits.npy")
    assert logits.dtype == np.float32 and logits.shape == (3, classes), (logits.dtype, logits.shape)
    assert np.isfinite(logits).all()
    single = np.load(ctx.tmp / "single_logits.npy")
    np.testing.assert_allclose(single[0], logits[1], rtol=1e-3, atol=1e-3)


def test_infer_rejects_bad_input(ctx):
    channels, height, width = ctx.input_shape()
    wrong_shape = ctx.tmp / "wrong_shape.npy"
    np.save(wrong_shape, np.zeros((1, channels + 1, height, width), np.float32))
    expect_one_line_error(ctx.run("infer", "--model", ctx.model, "--input", wrong_shape, "--output", ctx.tmp / "o.npy"),
                          1, str(wrong_shape), f"(batch, {channels}, {height}, {width})")
    doubles = ctx.tmp / "doubles.npy"
    np.save(doubles, np.zeros((1, channels, height, width), np.float64))
    expect_one_line_error(ctx.run("infer", "--model", ctx.model, "--input", doubles, "--output", ctx.tmp / "o.npy"),
                          1, "'<f8'")
    fortran = ctx.tmp / "fortran.npy"
    np.save(fortran, np.asfortranarray(np.zeros((2, channels, height, width), np.float32)))
    expect_one_line_error(ctx.run("infer", "--model", ctx.model, "--input", fortran, "--output", ctx.tmp / "o.npy"),
                          1, "Fortran")
    expect_one_line_error(ctx.run("infer", "--model", ctx.model, "--input", ctx.tmp / "absent.npy",
                                  "--output", ctx.tmp / "o.npy"), 1, "absent.npy")
    assert not (ctx.tmp / "o.npy").exists(), "a failed infer wrote its output"


def test_classify_table(ctx):
    result = ctx.run("classify", "--model", ctx.model, "--top", "3", ctx.samples[0])
    expect_success(result)
    lines = result.stdout.splitlines()
    assert lines[0] == str(ctx.samples[0]), describe(result)
    assert len(lines) == 2 + 3 and lines[2].split()[0] == "1" and lines[2].split()[1].endswith("%"), describe(result)


def test_classify_json(ctx):
    result = ctx.run("classify", "--model", ctx.model, "--json", "--top", "2", *ctx.samples)
    expect_success(result)
    records = json_lines(result)
    assert [r["image"] for r in records] == [str(p) for p in ctx.samples], describe(result)
    for record in records:
        assert list(record) == ["image", "topk"], record
        check_topk(record, 2)


def test_classify_top_larger_than_classes(ctx):
    classes = int(ctx.info_value("classes"))
    result = ctx.run("classify", "--model", ctx.model, "--json", "--top", classes + 5, ctx.samples[0])
    expect_success(result)
    check_topk(json_lines(result)[0], classes)


def test_classify_samples_correctly(ctx):
    """The bundled samples are named digit_<label>_<n>.png and are classified correctly."""
    labelled = [(p, int(p.name.split("_")[1])) for p in ctx.samples if p.name.startswith("digit_")]
    if not labelled:
        raise Skip("no digit_<label>_<n>.png samples")
    result = ctx.run("classify", "--model", ctx.model, "--json", "--top", "1", *(p for p, _ in labelled))
    expect_success(result)
    for record, (path, label) in zip(json_lines(result), labelled):
        assert record["topk"][0]["index"] == label, (path, record)


def direct_input(ctx):
    """The samples as the model's input, computed here (PIL + mean/std), for a model whose
    recipe is a direct resize to sample-sized images (no resampling): the .npy's path."""
    channels, height, width = ctx.input_shape()
    if ctx.info_value("resize") != f"direct to {height} x {width}":
        raise Skip("preprocessing is not a direct resize")
    try:
        from PIL import Image
    except ImportError:
        raise Skip("needs PIL") from None

    mode = {1: "L", 3: "RGB"}[channels]
    images = [Image.open(p).convert(mode) for p in ctx.samples]
    if any(image.size != (width, height) for image in images):
        raise Skip(f"samples are not {width}x{height}, so preprocessing would resample")
    mean = np.array([float(v) for v in ctx.info_value("mean").split(",")], np.float32).reshape(-1, 1, 1)
    std = np.array([float(v) for v in ctx.info_value("std").split(",")], np.float32).reshape(-1, 1, 1)
    pixels = np.stack([np.asarray(image, np.float32).reshape(height, width, channels).transpose(2, 0, 1)
                       for image in images])
    np.save(ctx.tmp / "samples.npy", ((pixels / 255 - mean) / std).astype(np.float32))
    return ctx.tmp / "samples.npy"


def test_classify_agrees_with_infer(ctx):
    """classify's probabilities are the softmax of infer's logits on the same pixels."""
    samples = direct_input(ctx)
    expect_success(ctx.run("infer", "--model", ctx.model, "--input", samples,
                           "--output", ctx.tmp / "logits.npy"))
    logits = np.load(ctx.tmp / "logits.npy").astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)

    result = ctx.run("classify", "--model", ctx.model, "--json", "--top", "3", *ctx.samples)
    expect_success(result)
    for row, record in zip(probs, json_lines(result)):
        for entry in record["topk"]:
            assert abs(entry["prob"] - row[entry["index"]]) < 1e-4, (record, row)
        assert record["topk"][0]["index"] == int(row.argmax()), (record, row)


def test_directories_expand_alike(ctx):
    """classify, embed, eval and explain take a directory by one rule: its image files (JPEG, PNG, WebP,
    BMP, TIFF by extension) and those below it, sorted by path; other files skipped and counted in one note
    on stderr."""
    from PIL import Image
    labelled = digit_samples(ctx)
    directory = ctx.tmp / "album"
    (directory / "nested").mkdir(parents=True)
    names = ["b.png", "a.png", "c.PNG", "nested/d.png", "f.webp", "g.BMP", "h.tif", "nested/i.tiff"]
    with Image.open(labelled[0][0]) as sample:
        for name in names:
            sample.save(directory / name, **({"lossless": True} if name.endswith(".webp") else {}))
    (directory / "notes.txt").write_text("not an image")
    (directory / "nested" / "e.gif").write_bytes(b"GIF89a")
    expected = sorted(str(directory / name) for name in names)
    note = NOTE.format("2 files")

    for command, arguments in [("classify", ["--json", "--top", "1"]), ("embed", ["--json"])]:
        result = ctx.run(command, "--model", ctx.model, *arguments, directory)
        assert result.returncode == 0 and result.stderr == note, describe(result)
        assert [record["image"] for record in json_lines(result)] == expected, describe(result)
    explained = ctx.run("explain", "--model", ctx.model, "--out", ctx.tmp / "maps", directory / "nested")
    assert explained.returncode == 0 and explained.stderr == note.replace("2 files", "1 file"), describe(explained)
    assert (ctx.tmp / "maps" / "d.npy").is_file(), describe(explained)
    named = ctx.run("classify", "--model", ctx.model, directory / "notes.txt")  # named: refused, as undecodable
    expect_one_line_error(named, 1, "notes.txt")

    labelled_dir = ctx.tmp / "labelled"
    (labelled_dir / str(labelled[0][1])).mkdir(parents=True)
    shutil.copy(labelled[0][0], labelled_dir / str(labelled[0][1]) / "x.png")
    (labelled_dir / "README").write_text("")
    result = ctx.run("eval", "--model", ctx.model, "--json", labelled_dir)
    assert result.returncode == 0 and result.stderr == note.replace("2 files", "1 file"), describe(result)
    assert json_lines(result)[0]["images"] == 1, describe(result)


def test_images_from_stdin(ctx):
    """"-" is the image on stdin, in every command that takes images (eval refuses it: no label)."""
    sample = ctx.samples[0]

    def piped(*args, image=sample):
        with open(image, "rb") as stdin:
            return subprocess.run([str(ctx.onevit), *map(str, args)], stdin=stdin, capture_output=True, text=True,
                                  timeout=300, env=TOOL_ENV)

    named = ctx.run("classify", "--model", ctx.model, "--json", sample, sample)
    result = piped("classify", "--model", ctx.model, "--json", "-", sample, "-")  # read once, used twice
    expect_success(result)
    expected = json_lines(named)[0]["topk"]
    assert [(r["image"], r["topk"]) for r in json_lines(result)] == \
        [("-", expected), (str(sample), expected), ("-", expected)], describe(result)

    expect_success(ctx.run("embed", "--model", ctx.model, "-o", ctx.tmp / "named.npy", sample))
    expect_success(piped("embed", "--model", ctx.model, "-o", ctx.tmp / "piped.npy", "-"))
    assert np.array_equal(np.load(ctx.tmp / "named.npy"), np.load(ctx.tmp / "piped.npy"))
    assert (ctx.tmp / "piped.txt").read_text() == "-\n"

    explained = piped("explain", "--model", ctx.model, "--out", ctx.tmp / "from_stdin", "-")
    expect_success(ctx.run("explain", "--model", ctx.model, "--out", ctx.tmp / "from_file", sample))
    assert explained.returncode == 0, describe(explained)
    assert np.array_equal(np.load(ctx.tmp / "from_stdin" / "stdin.npy"),
                          np.load(ctx.tmp / "from_file" / f"{sample.stem}.npy")), describe(explained)
    assert (ctx.tmp / "from_stdin" / "stdin.png").read_bytes() == \
        (ctx.tmp / "from_file" / f"{sample.stem}.png").read_bytes()

    bench = piped("bench", "--model", ctx.model, "--input", "-", "--iters", "1", "--warmup", "0", "--json")
    expect_success(bench)
    assert json_lines(bench)[0]["input_images"] == 1, describe(bench)

    expect_one_line_error(piped("eval", "--model", ctx.model, "-"), 1, "-: eval takes each image's class")
    garbage = ctx.tmp / "garbage.bin"
    garbage.write_bytes(b"not an image at all")
    expect_one_line_error(piped("classify", "--model", ctx.model, "-", image=garbage), 1,
                          "stdin: not a JPEG, PNG, WebP, BMP or TIFF file")


def test_classify_empty_directory(ctx):
    empty = ctx.tmp / "empty_album"
    empty.mkdir()
    expect_one_line_error(ctx.run("classify", "--model", ctx.model, empty), 1, str(empty))


def test_classify_missing_image(ctx):
    missing = ctx.tmp / "no_such_image.png"
    expect_one_line_error(ctx.run("classify", "--model", ctx.model, missing), 1, str(missing))


def test_classify_corrupt_among_good(ctx):
    corrupt = ctx.tmp / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    truncated = ctx.tmp / "truncated.png"
    truncated.write_bytes(ctx.samples[0].read_bytes()[:200])
    good = ctx.samples[:2]
    images = [good[0], corrupt, good[-1], truncated]

    result = ctx.run("classify", "--model", ctx.model, "--json", *images)
    assert result.returncode == 1, describe(result)
    stderr_lines = result.stderr.splitlines()
    assert len(stderr_lines) == 2 and all(line.startswith("onevit: error: ") for line in stderr_lines), describe(result)
    records = json_lines(result)
    assert [r["image"] for r in records] == [str(p) for p in images], describe(result)
    default_top = min(5, int(ctx.info_value("classes")))
    for record in records:
        if Path(record["image"]) in good:
            check_topk(record, default_top)
        else:
            assert list(record) == ["image", "error"] and record["error"], record

    table = ctx.run("classify", "--model", ctx.model, *images)
    assert table.returncode == 1 and len(table.stderr.splitlines()) == 2, describe(table)
    assert str(good[0]) in table.stdout and str(good[-1]) in table.stdout, describe(table)


def test_classify_many_in_order(ctx):
    """Over several batches (decoded ahead, in parallel), with failures among them: every image in input
    order, each with the classes it gets when classified alone."""
    corrupt = ctx.tmp / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    images = [corrupt, *ctx.samples, *reversed(ctx.samples), corrupt, *ctx.samples[:3], corrupt]
    result = ctx.run("classify", "--model", ctx.model, "--json", "--top", "2", *images)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 3, describe(result)
    records = json_lines(result)
    assert [r["image"] for r in records] == [str(p) for p in images], describe(result)
    alone_results = {str(p): json_lines(ctx.run("classify", "--model", ctx.model, "--json", "--top", "2", p))[0]
                     for p in ctx.samples}
    for record in records:
        if Path(record["image"]) == corrupt:
            assert list(record) == ["image", "error"], record
            continue
        alone = alone_results[record["image"]]
        assert [t["index"] for t in record["topk"]] == [t["index"] for t in alone["topk"]], (record, alone)
        assert all(abs(a["prob"] - b["prob"]) < 1e-5 for a, b in zip(record["topk"], alone["topk"])), (record, alone)


def test_progress_on_a_terminal(ctx):
    """classify, embed and eval: with stderr a terminal (script(1)'s pty), a progress line there; stdout as
    without one."""
    if not shutil.which("script"):
        raise Skip("needs script(1) (util-linux)")
    labelled = digit_samples(ctx)
    for path, label in labelled:  # eval's images, in folders named after their labels
        (ctx.tmp / "by_label" / str(label)).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ctx.tmp / "by_label" / str(label) / path.name)
    count = len(ctx.samples)
    for arguments, images in [(["classify", "--model", ctx.model, "--json", *ctx.samples], count),
                              (["embed", "--model", ctx.model, "--json", *ctx.samples], count),
                              (["eval", "--model", ctx.model, "--json", ctx.tmp / "by_label"], len(labelled))]:
        out = ctx.tmp / "out.json"
        command = f"{shlex.join([str(ctx.onevit), *map(str, arguments)])} > {shlex.quote(str(out))}"
        # Bytes: text mode would turn the line's carriage returns into newlines.
        terminal = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=300,
                                  env=TOOL_ENV)
        screen = terminal.stdout.decode(errors="replace")
        assert terminal.returncode == 0, f"{arguments[0]}: exit {terminal.returncode}: {screen!r}"
        assert re.fullmatch(rf"(\r\x1b\[K\d+/{images} images  \d+\.\d images/s  ETA (\d+:\d\d|\?))+"
                            rf"\r\x1b\[K{images}/{images} images  \d+\.\d images/s  \d+:\d\d\r\n", screen), \
            (arguments[0], screen)
        plain = ctx.run(*arguments)
        expect_success(plain)  # no terminal: nothing on stderr
        assert out.read_text() == plain.stdout, arguments[0]


def test_embed_agrees_with_infer(ctx):
    """embed's rows are infer's --embedding on the same pixels; --normalize scales them to unit norm."""
    samples = direct_input(ctx)
    expect_success(ctx.run("infer", "--model", ctx.model, "--input", samples,
                           "--embedding", ctx.tmp / "infer_embedding.npy"))
    expected = np.load(ctx.tmp / "infer_embedding.npy").astype(np.float64)
    assert expected.shape == (len(ctx.samples), int(ctx.info_value("dim"))), expected.shape
    expect_success(ctx.run("embed", "--model", ctx.model, "--output", ctx.tmp / "embedding.npy", *ctx.samples))
    got = np.load(ctx.tmp / "embedding.npy")
    assert got.dtype == np.float32 and got.shape == expected.shape, (got.dtype, got.shape)
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max()), np.abs(got - expected).max()

    result = ctx.run("embed", "--model", ctx.model, "--json", "--normalize", *ctx.samples)
    expect_success(result)
    records = json_lines(result)
    assert [r["image"] for r in records] == [str(p) for p in ctx.samples], describe(result)
    unit = np.array([r["embedding"] for r in records])
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5), np.linalg.norm(unit, axis=1)
    assert np.allclose(unit, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_embed_corrupt_among_good(ctx):
    corrupt = ctx.tmp / "corrupt_embed.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    good = ctx.samples[:2]
    result = ctx.run("embed", "--model", ctx.model, "--json", "--output", ctx.tmp / "some.npy",
                     good[0], corrupt, good[-1])
    assert result.returncode == 1, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("onevit: error: "), describe(result)
    records = json_lines(result)
    assert [r["image"] for r in records] == [str(good[0]), str(corrupt), str(good[-1])], describe(result)
    assert list(records[1]) == ["image", "error"], records[1]
    # Row i is image i: the failed image's row is NaN, and some.txt lists the rows' images.
    rows = np.load(ctx.tmp / "some.npy")
    assert rows.shape == (3, int(ctx.info_value("dim"))), rows.shape
    assert np.isnan(rows[1]).all() and np.isfinite(rows[[0, 2]]).all(), rows
    assert np.allclose(rows[[0, 2]], [records[0]["embedding"], records[2]["embedding"]], atol=1e-6)
    assert (ctx.tmp / "some.txt").read_text() == "".join(f"{p}\n" for p in (good[0], corrupt, good[-1]))
    expect_one_line_error(ctx.run("embed", "--model", ctx.model, good[0]), 1, "--output", "--json")
    expect_one_line_error(ctx.run("embed", "--model", ctx.model, "-o", ctx.tmp / "list.txt", good[0]), 1,
                          "list.txt", "overwrite")


def test_classify_rejects_bad_top(ctx):
    for top in ["0", "-1", "three"]:
        expect_one_line_error(ctx.run("classify", "--model", ctx.model, "--top", top, ctx.samples[0]), 2, "--top")


def test_bench_json(ctx):
    result = ctx.run("bench", "--model", ctx.model, "--batch", "2", "--threads", "1", "--iters", "3",
                     "--warmup", "1", "--json")
    expect_success(result)
    (report,) = json_lines(result)
    for key in ["latency_ms_mean", "latency_ms_median", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                "latency_ms_min", "latency_ms_max", "images_per_s", "gflops", "peak_gflops", "efficiency", "load_ms",
                "first_result_ms"]:
        assert isinstance(report[key], float) and report[key] > 0, report
    assert report["latency_ms_min"] <= report["latency_ms_p50"] <= report["latency_ms_p90"] <= \
        report["latency_ms_p99"] <= report["latency_ms_max"], report
    assert report["latency_ms_min"] <= report["latency_ms_mean"] <= report["latency_ms_max"], report
    assert report["latency_ms_median"] == report["latency_ms_p50"], report
    assert report["load_ms"] < report["first_result_ms"], report
    # One stream runs one request at a time: no faster than its fastest request.
    assert report["images_per_s"] <= 2 / (report["latency_ms_min"] / 1000) * 1.0001, report
    assert math.isclose(report["efficiency"], report["gflops"] / report["peak_gflops"], rel_tol=1e-9), report
    assert report["batch"] == 2 and report["threads"] == 1 and report["model"] == str(ctx.model), report
    assert report["hint"] == "latency" and report["streams"] == 1, report
    assert report["threads_chosen"] is False, report  # --threads given
    assert report["precision"] == "f32" and report["input"] == "random", report
    assert 1 <= report["iterations"] <= 3, report
    version = ctx.run("--version").stdout.split()[1]
    assert report["onevit_version"] == version, report
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", report["onednn_version"]), report
    assert report["cpu"] and report["isa"] and not report["isa"].startswith("oneDNN"), report
    chosen = ctx.run("bench", "--model", ctx.model, "--iters", "1", "--warmup", "0", "--json")
    expect_success(chosen)
    assert json_lines(chosen)[0]["threads_chosen"] is True, describe(chosen)


def test_bench_on_images(ctx):
    """--input: the forward timed on real images, their decoding reported apart; a bad one refused."""
    result = ctx.run("bench", "--model", ctx.model, "--input", ctx.samples[0].parent, "--batch", "3", "--iters", "2",
                     "--warmup", "0", "--json")
    expect_success(result)
    (report,) = json_lines(result)
    assert report["input"] == "images" and report["input_images"] == len(ctx.samples), report
    assert 0 < report["decode_preprocess_ms_p50"] <= report["decode_preprocess_ms_p90"] <= \
        report["decode_preprocess_ms_max"], report
    assert 0 < report["decode_preprocess_ms_mean"] <= report["decode_preprocess_ms_max"], report
    text = ctx.run("bench", "--model", ctx.model, "--input", ctx.samples[0], "--iters", "1", "--warmup", "0")
    expect_success(text)
    assert re.search(r"^input +1 images: decode \+ preprocess", text.stdout, re.M), describe(text)
    corrupt = ctx.tmp / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    expect_one_line_error(ctx.run("bench", "--model", ctx.model, "--input", corrupt), 1, str(corrupt))


def test_bench_emulate_threads_names_the_ops(ctx):
    """--emulate-threads: each phase says which ops it runs (JSON "ops", the text table's last column) and
    what each took (JSON "op_ms")."""
    result = ctx.run("bench", "--model", ctx.model, "--emulate-threads", "2", "--iters", "1", "--json")
    expect_success(result)
    (report,) = json_lines(result)
    phases = report["phases"]
    assert phases and all(isinstance(p["ops"], str) and p["ops"] for p in phases), report
    names = " + ".join(p["ops"] for p in phases).split(" + ")
    for p in phases:  # each op's CPU time, from runs of their own (timing an op costs clock reads)
        assert list(p["op_ms"]) == p["ops"].split(" + "), p
        assert all(ms >= 0 for ms in p["op_ms"].values()) and sum(p["op_ms"].values()) > 0, p
    depth = int(ctx.info_value("depth"))
    for block in (0, depth - 1):  # every block's ops are there, named by their weights' prefix
        assert any(name.startswith(f"blocks.{block}.") for name in names), names
    text = ctx.run("bench", "--model", ctx.model, "--emulate-threads", "2", "--iters", "1")
    expect_success(text)
    rows = [line for line in text.stdout.splitlines() if re.match(r"^ +\d+ +\d+ +[\d.]+ +[\d.]+  \S", line)]
    assert [row.split(None, 4)[4] for row in rows] == [p["ops"] for p in phases], describe(text)


def test_threads_beyond_the_cores(ctx):
    """More threads than this process's cores: capped, said in one note; no TBB warning."""
    cores = len(os.sched_getaffinity(0))
    for command in (["bench", "--iters", "1", "--warmup", "0", "--json"], ["classify", "--json", ctx.samples[0]]):
        result = ctx.run(command[0], "--model", ctx.model, "--threads", cores + 1, *command[1:])
        assert result.returncode == 0, describe(result)
        assert result.stderr == f"onevit: note: --threads {cores + 1}: this process has {cores} cores, so the " \
            f"model runs on {cores} threads\n", describe(result)
        if command[0] == "bench":
            assert json_lines(result)[0]["threads"] == cores, describe(result)


def test_files_precision_is_the_default(ctx):
    """info shows how the weights are stored and the file's size; a file written in int8 computes in int8
    unless --precision says otherwise (infer's logits = --precision int8's, not f32's; bench reports it),
    a file written in f32 in f32; --help says so."""
    import safetensors_io
    from random_vit import random_vit_state
    state = random_vit_state(64, 2, mlp_dim=128, num_classes=10, seed=2505, grid_tokens=16)
    safetensors_io.save_file(state, str(ctx.tmp / "random.safetensors"), metadata={"format": "pt"})
    files = {}
    for dtype in ("f32", "int8"):
        files[dtype] = ctx.tmp / f"random_{dtype}.ovit"
        converted = subprocess.run([sys.executable, str(Path(ctx.repo) / "weights" / "convert.py"),
                                    str(ctx.tmp / "random.safetensors"), "--heads", "2", "--dtype", dtype,
                                    "-o", str(files[dtype])], capture_output=True, text=True, env=TOOL_ENV)
        assert converted.returncode == 0, converted.stderr
    x = np.random.default_rng(6).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.save(ctx.tmp / "x.npy", x)

    def logits(model, *precision):
        expect_success(ctx.run("infer", "--model", model, "--input", ctx.tmp / "x.npy", "--output",
                               ctx.tmp / "y.npy", *precision))
        return np.load(ctx.tmp / "y.npy")

    for dtype, model in files.items():
        info = ctx.run("info", model)
        expect_success(info)
        assert re.search(rf"^weights stored +{dtype} \(", info.stdout, re.M), describe(info)
        size = f"{os.path.getsize(model):,} bytes"
        assert re.search(rf"^file size +{size} \(\d+\.\d [KM]iB\)$", info.stdout, re.M), describe(info)
        assert np.array_equal(logits(model), logits(model, "--precision", dtype)), dtype
        bench = ctx.run("bench", "--model", model, "--iters", "1", "--warmup", "0", "--json")
        expect_success(bench)
        assert json_lines(bench)[0]["precision"] == dtype, describe(bench)
    assert not np.array_equal(logits(files["int8"]), logits(files["int8"], "--precision", "f32"))
    assert "the one the file was written for" in ctx.run("classify", "--help").stdout


def test_bench_precision(ctx):
    """bench reports the precision asked for; auto is what --help says it picks here."""
    help_text = ctx.run("bench", "--help").stdout
    picked = re.search(r"\(here: (f32|bf16|int8)\)", help_text)
    assert picked, help_text
    for asked, reported in [("bf16", "bf16"), ("int8", "int8"), ("auto", picked.group(1))]:
        result = ctx.run("bench", "--model", ctx.model, "--threads", "1", "--iters", "1", "--warmup", "0",
                         "--precision", asked, "--json")
        expect_success(result)
        (report,) = json_lines(result)
        assert report["precision"] == reported and report["peak_gflops"] > 0, report
    # The cost model's figure is for the precision that runs (int8's matmuls are not f32's).
    modelled = {}
    for precision in ("f32", "int8"):
        result = ctx.run("bench", "--model", ctx.model, "--threads", "1", "--iters", "1", "--warmup", "0",
                         "--precision", precision, "--json")
        expect_success(result)
        modelled[precision] = json_lines(result)[0]["modelled_latency_ms"]
    assert modelled["f32"] != modelled["int8"], modelled


def shared_option_commands(ctx):
    """Each command that runs a model, with what it needs to run on the first sample: (name, arguments,
    takes --batch)."""
    channels, height, width = ctx.input_shape()
    input_npy = ctx.tmp / "one.npy"
    np.save(input_npy, np.zeros((1, channels, height, width), np.float32))
    labelled = digit_samples(ctx)
    folder = ctx.tmp / "eval" / str(labelled[0][1])
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(labelled[0][0], folder / "a.png")
    return [("infer", ["--input", input_npy, "--output", ctx.tmp / "o.npy"], False),
            ("classify", [ctx.samples[0]], True),
            ("embed", ["--json", ctx.samples[0]], True),
            ("explain", ["--out", ctx.tmp / "explained", ctx.samples[0]], False),
            ("eval", [ctx.tmp / "eval"], True),
            ("bench", ["--iters", "1", "--warmup", "0"], True)]


def test_every_command_takes_the_shared_options(ctx):
    """--precision (f32|bf16|int8|auto) and --threads on every command that runs a model, --batch on those
    that batch images: the same option, the same values, the same refusal."""
    for name, arguments, batches in shared_option_commands(ctx):
        for precision in ["f32", "bf16", "int8", "auto"]:
            expect_success(ctx.run(name, "--model", ctx.model, *arguments, "--precision", precision, "--threads", "1",
                                   *(["--batch", "2"] if batches else [])))
        expect_one_line_error(ctx.run(name, "--model", ctx.model, *arguments, "--precision", "fp16"), 2,
                              "--precision", "fp16")
        expect_one_line_error(ctx.run(name, "--model", ctx.model, *arguments, "--threads", "-1"), 2, "--threads")
        if batches:
            expect_one_line_error(ctx.run(name, "--model", ctx.model, *arguments, "--batch", "0"), 2, "--batch")
        help_text = ctx.run(name, "--help").stdout
        assert re.search(r"--precision.*auto = the fastest this CPU runs natively \(here: (f32|bf16|int8)\)",
                         help_text, re.S), (name, help_text)


def test_headless_model(ctx):
    """A model without a classifier (num_classes 0): classify and eval refuse it in one line, as C and
    Python do, pointing at embed; embed, explain and infer serve it."""
    sys.path.insert(0, str(Path(ctx.repo) / "tests" / "reference"))
    from headless_model import write_headless_vit
    headless = ctx.tmp / "headless.ovit"
    write_headless_vit(str(headless), str(Path(ctx.repo) / "weights" / "convert.py"))
    expect_one_line_error(ctx.run("classify", "--model", headless, ctx.samples[0]), 1, str(headless),
                          "no classifier", "onevit embed")
    labelled = digit_samples(ctx)
    (ctx.tmp / "set" / "0").mkdir(parents=True)
    shutil.copy(labelled[0][0], ctx.tmp / "set" / "0" / "a.png")
    expect_one_line_error(ctx.run("eval", "--model", headless, ctx.tmp / "set"), 1, "no classifier", "onevit embed")
    expect_success(ctx.run("embed", "--model", headless, "--json", ctx.samples[0]))
    explained = ctx.run("explain", "--model", headless, "--out", ctx.tmp / "explained", ctx.samples[0])
    expect_success(explained)
    assert "no classifier" in explained.stdout, describe(explained)


def test_infer_each_output_alone(ctx):
    """Every output flag of infer is enough on its own."""
    channels, height, width = ctx.input_shape()
    input_npy = ctx.tmp / "two.npy"
    np.save(input_npy, np.random.default_rng(3).standard_normal((2, channels, height, width)).astype(np.float32))
    dim = int(ctx.info_value("dim"))
    for flag, rank in [("--output", 2), ("--embedding", 2), ("--cls", 2), ("--tokens", 3), ("--attention", 5)]:
        out = ctx.tmp / f"{flag[2:]}.npy"
        expect_success(ctx.run("infer", "--model", ctx.model, "--input", input_npy, flag, out))
        array = np.load(out)
        assert array.ndim == rank and array.shape[0] == 2 and np.isfinite(array).all(), (flag, array.shape)
        if flag in ("--embedding", "--cls", "--tokens"):
            assert array.shape[-1] == dim, (flag, array.shape)
    expect_one_line_error(ctx.run("infer", "--model", ctx.model, "--input", input_npy), 1, "nothing to write",
                          "--attention")


def test_bench_throughput_hint(ctx):
    result = ctx.run("bench", "--model", ctx.model, "--threads", "2", "--hint", "throughput", "--iters", "2",
                     "--warmup", "1", "--json")
    expect_success(result)
    (report,) = json_lines(result)
    assert report["hint"] == "throughput" and report["streams"] == 2 and report["threads"] == 2, report
    assert report["iterations"] == 2 * 2, report  # a request per stream per round
    # --streams 2 without a hint runs as throughput does, and says so.
    streams = ctx.run("bench", "--model", ctx.model, "--threads", "2", "--streams", "2", "--iters", "1",
                      "--warmup", "0", "--json")
    expect_success(streams)
    assert json_lines(streams)[0]["hint"] == "throughput" and json_lines(streams)[0]["streams"] == 2, describe(streams)


def test_bench_rejects_bad_numbers(ctx):
    for option, value in [("--batch", "0"), ("--threads", "-1"), ("--iters", "0"), ("--warmup", "-2"),
                          ("--streams", "-1"), ("--hint", "fastest")]:
        expect_one_line_error(ctx.run("bench", "--model", ctx.model, option, value), 2, option)


def digit_samples(ctx):
    labelled = [(p, int(p.name.split("_")[1])) for p in ctx.samples if p.name.startswith("digit_")]
    if len(labelled) < 3:
        raise Skip("fewer than 3 digit_<label>_<n>.png samples")
    return labelled


def expected_hits(ctx, images_and_truth):
    """(top-1, top-5) hit counts, from `classify --json --top 5` and the known classes."""
    result = ctx.run("classify", "--model", ctx.model, "--json", "--top", "5", *(p for p, _ in images_and_truth))
    expect_success(result)
    ranks = [[e["index"] for e in record["topk"]] for record in json_lines(result)]
    top1 = sum(r[0] == truth for r, (_, truth) in zip(ranks, images_and_truth))
    top5 = sum(truth in r for r, (_, truth) in zip(ranks, images_and_truth))
    return top1, top5


def test_eval_folders_named_after_labels(ctx):
    """Each sample in a folder named after its label, one in the wrong folder on purpose."""
    labelled = digit_samples(ctx)
    truth = [(path, label) for path, label in labelled]
    truth[0] = (truth[0][0], (truth[0][1] + 1) % 10)  # filed under the next digit
    placed = []
    for path, label in truth:
        folder = ctx.tmp / "digits" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
        placed.append((folder / path.name, label))
    top1, top5 = expected_hits(ctx, placed)
    assert top1 < len(placed), "the misfiled sample should miss"

    result = ctx.run("eval", "--model", ctx.model, "--top5", "--json", ctx.tmp / "digits")
    expect_success(result)
    (report,) = json_lines(result)
    assert report == {"model": str(ctx.model), "images": len(placed), "failed": 0, "precision": "f32",
                      "top1": top1 / len(placed), "top5": top5 / len(placed)}, report
    text = ctx.run("eval", "--model", ctx.model, ctx.tmp / "digits")
    expect_success(text)
    assert f"({top1}/{len(placed)})" in text.stdout and "top-5" not in text.stdout, describe(text)


def test_eval_wordnet_ids(ctx):
    """n<8 digits>_name.png: the id's line in the synset list is the class."""
    labelled = digit_samples(ctx)
    ids = [f"n{9000000 + k:08d}" for k in range(10)]
    album = ctx.tmp / "album"
    album.mkdir()
    placed = []
    for path, label in labelled:
        placed.append((album / f"{ids[label]}_{path.name}", label))
        shutil.copy(path, placed[-1][0])
    top1, _ = expected_hits(ctx, placed)

    missing = ctx.run("eval", "--model", ctx.model, album)
    expect_one_line_error(missing, 1, "WordNet id", "--synsets")

    synsets = ctx.tmp / "synsets.txt"
    synsets.write_text("".join(f"{i} digit {k}\n" for k, i in enumerate(ids)))
    given = ctx.run("eval", "--model", ctx.model, "--synsets", synsets, "--json", album)
    expect_success(given)
    assert json_lines(given)[0]["top1"] == top1 / len(placed), describe(given)

    shutil.copy(synsets, album / "synset_words.txt")  # beside the images: found without --synsets
    beside = ctx.run("eval", "--model", ctx.model, "--json", album)
    assert beside.returncode == 0 and beside.stderr == NOTE.format("1 file"), describe(beside)
    assert json_lines(beside)[0]["top1"] == top1 / len(placed), describe(beside)
    (album / "synset_words.txt").unlink()

    short = ctx.tmp / "short.txt"
    short.write_text("".join(f"{i} digit\n" for i in ids[:9]))
    expect_one_line_error(ctx.run("eval", "--model", ctx.model, "--synsets", short, album), 1,
                          str(short), "9 WordNet ids", "10 classes")
    bad = ctx.tmp / "bad.txt"
    bad.write_text("n09000000 zero\nseven\n")
    expect_one_line_error(ctx.run("eval", "--model", ctx.model, "--synsets", bad, album), 1, f"{bad}:2")


def test_eval_counts_bad_and_unlabelled_images(ctx):
    labelled = digit_samples(ctx)
    folder = ctx.tmp / "set" / str(labelled[1][1])
    folder.mkdir(parents=True)
    shutil.copy(labelled[1][0], folder / "good.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    stray = ctx.tmp / "set" / "not_a_label"
    stray.mkdir()
    shutil.copy(labelled[2][0], stray / "stray.png")

    result = ctx.run("eval", "--model", ctx.model, "--json", ctx.tmp / "set")
    assert result.returncode == 1, describe(result)
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all(line.startswith("onevit: error: ") for line in errors), describe(result)
    assert any("corrupt.png" in line for line in errors) and any("stray.png" in line and "no class" in line
                                                                 for line in errors), describe(result)
    (report,) = json_lines(result)
    assert (report["images"], report["failed"]) == (1, 2), report


def test_eval_against_another_precision(ctx):
    labelled = digit_samples(ctx)
    folder = ctx.tmp / "one" / str(labelled[0][1])
    folder.mkdir(parents=True)
    shutil.copy(labelled[0][0], folder / "a.png")
    result = ctx.run("eval", "--model", ctx.model, "--against", "f32", "--json", ctx.tmp / "one")
    expect_success(result)
    (report,) = json_lines(result)
    assert report["against"] == {"precision": "f32", "top1": report["top1"], "agreement": 1.0}, report
    expect_one_line_error(ctx.run("eval", "--model", ctx.model, "--precision", "f16", folder), 2, "f16")
    expect_one_line_error(ctx.run("eval", "--model", ctx.model, "--against", "fp8", folder), 2, "--against", "fp8")


def test_eval_per_image_results_and_classes(ctx):
    """--output: each image's label, top-5 and correctness (JSON lines, or CSV by the name), failures as
    errors, in input order; --per-class: each class's accuracy. Expected values from classify."""
    labelled = digit_samples(ctx)
    placed = []
    for n, (path, label) in enumerate(labelled):
        filed = (label + 1) % 10 if n == 0 else label  # the first filed under the next digit: a miss
        (ctx.tmp / "set" / str(filed)).mkdir(parents=True, exist_ok=True)
        placed.append((ctx.tmp / "set" / str(filed) / path.name, filed))
        shutil.copy(path, placed[-1][0])
    corrupt = placed[1][0].parent / "zz_corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    classify = ctx.run("classify", "--model", ctx.model, "--json", "--top", "5", *(p for p, _ in placed))
    expect_success(classify)
    ranks = {r["image"]: ([e["index"] for e in r["topk"]], r["topk"][0]["label"]) for r in json_lines(classify)}
    labels = {int(r["topk"][0]["index"]): r["topk"][0]["label"] for r in json_lines(classify)}

    result = ctx.run("eval", "--model", ctx.model, "--json", "--top5", "--per-class", "--output",
                     ctx.tmp / "r.jsonl", ctx.tmp / "set")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, describe(result)
    records = [json.loads(line) for line in (ctx.tmp / "r.jsonl").read_text().splitlines()]
    order = sorted([str(p) for p, _ in placed] + [str(corrupt)])  # directories are listed sorted
    assert [r["image"] for r in records] == order, records
    for record in records:
        if record["image"] == str(corrupt):
            assert list(record) == ["image", "error"], record
            continue
        truth = dict((str(p), label) for p, label in placed)[record["image"]]
        ranked = ranks[record["image"]][0]
        assert record["label"] == truth and record["top5"] == ranked and record["correct"] == (ranked[0] == truth), \
            record
        assert record["name"] in ("", labels.get(truth, record["name"])), record
    (report,) = json_lines(result)
    expected = {}
    for path, label in placed:
        ranked = ranks[str(path)][0]
        entry = expected.setdefault(label, [0, 0, 0])
        entry[0] += 1
        entry[1] += ranked[0] == label
        entry[2] += label in ranked
    assert [(c["index"], c["images"], c["top1"], c["top5"]) for c in report["per_class"]] == \
        [(k, n, t1 / n, t5 / n) for k, (n, t1, t5) in sorted(expected.items())], report["per_class"]

    csv_result = ctx.run("eval", "--model", ctx.model, "--output", ctx.tmp / "r.csv", ctx.tmp / "set")
    assert csv_result.returncode == 1, describe(csv_result)
    import csv
    with open(ctx.tmp / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == order, rows
    for row, record in zip(rows, records):
        if "error" in record:
            assert row["error"] == record["error"] and row["label"] == "", row
        else:
            assert (int(row["label"]), [int(v) for v in row["top5"].split()], row["correct"]) == \
                (record["label"], record["top5"], "true" if record["correct"] else "false"), (row, record)
    text = ctx.run("eval", "--model", ctx.model, "--per-class", ctx.tmp / "set")
    assert text.returncode == 1 and "per class" in text.stdout, describe(text)


def main():
    parser = argument_parser(__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_digits_arguments(parser)
    args = parser.parse_args()
    onevit = resolve_onevit(args.onevit, args.repo)
    model, samples = digits_model_and_samples(args, args.repo, min_samples=2)
    model, samples = Path(model), [Path(p) for p in samples]

    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    failures = skipped = 0
    for name, test in tests:
        with tempfile.TemporaryDirectory(prefix="onevit_cli_") as tmp:
            try:
                test(Context(onevit, model, samples, Path(tmp), args.repo))
                print(f"PASS {name}")
            except Skip as reason:
                skipped += 1
                print(f"SKIP {name}: {reason}")
            except Exception as error:  # an assertion, or output missing what the test reads
                failures += 1
                print(f"FAIL {name}\n{type(error).__name__}: {error}")
    print(f"{len(tests) - failures - skipped}/{len(tests)} passed, {skipped} skipped, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
