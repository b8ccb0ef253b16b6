#!/usr/bin/python3
"""The GTK 4 desktop example, used as a person would: under Xvfb.

Run inside an X server (ctest starts it with `xvfb-run -a`):
  1. start `onevit-desktop MODEL IMAGE`;
  2. wait (up to 120 s) for its stdout line "shown: LABEL P% | IMAGE | window WxH",
     which it prints once the result has been painted;
  3. the label and probability must be `onevit classify --json --top 1`'s top-1 for
     that image (to the 0.1 % shown);
  4. take a screenshot of the window by its title with ImageMagick's `import`
     (Debian: imagemagick), and check it is the window's size and not blank
     (many distinct colours: the picture, the heat-map and the text);
  5. close the app (SIGTERM) and check that it had no crash;
  6. the same with a random model without a classifier (tests/reference/headless_model.py):
     "shown: no classifier (attention rollout only) | IMAGE | ...", the heat-map drawn.

Usage (in an X session):
    xvfb-run -a -s "-screen 0 1280x1024x24" /usr/bin/python3 tests/desktop_test.py \\
        --app build/apps/onevit-desktop --onevit build/apps/onevit [--model M --image I] [--screenshot OUT.png]
Exit status: 0 pass, 1 a check failed, 2 a tool failed.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (TOOL_ENV, argument_parser, exit_status, report, resolve_converter,  # noqa: E402
                     resolve_onevit, run_tool, scratch_dir)
from headless_model import write_headless_vit  # noqa: E402

WAIT_S = 120
SHOWN = re.compile(r"^shown: (?P<what>.*) \| (?P<image>.*) \| window (?P<w>\d+)x(?P<h>\d+)$")
NO_CLASSIFIER = "no classifier (attention rollout only)"
MIN_COLOURS = 64


def wait_for_shown(app: subprocess.Popen) -> tuple[str | None, str]:
    """The app's "shown:" line, or None; and everything it printed until then."""
    printed = ""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([app.stdout], [], [], 0.5)
        if ready:
            line = app.stdout.readline()
            if not line:  # the app exited
                return None, printed
            printed += line
            if line.startswith("shown: "):
                return line.rstrip("\n"), printed
        elif app.poll() is not None:
            return None, printed
    return None, printed


def matches(shown: str, expected: str) -> bool:
    """shown is expected, a "LABEL P%" within the 0.05 % of rounding to the 0.1 % shown."""
    labelled = re.compile(r"^(?P<label>.*) (?P<prob>[0-9.]+)%$")
    got, want = labelled.match(shown), labelled.match(expected)
    if not (got and want):
        return shown == expected
    return got["label"] == want["label"] and abs(float(got["prob"]) - float(want["prob"])) <= 0.051


def check_app(app_path: str, model: str, image: str, expected: str, tmp: str,
              screenshot: str | None) -> tuple[list[str], str]:
    """Runs the app on model and image; the failures, and what it showed."""
    failures = []
    env = dict(TOOL_ENV, GDK_BACKEND="x11")
    app = subprocess.Popen([app_path, model, image], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env)
    what = ""
    try:
        shown, printed = wait_for_shown(app)
        if shown is None:
            app.kill()
            _, err = app.communicate()
            return [f"{model}: no 'shown:' line within {WAIT_S} s (exit status {app.returncode}); "
                    f"stdout {printed!r}; stderr {err[-2000:]!r}"], what
        print(f"app: {shown}")
        m = SHOWN.match(shown)
        if not m:
            return [f"unexpected line {shown!r}"], what
        what = m["what"]
        if not matches(what, expected) or m["image"] != image:
            failures.append(f"the window shows {what!r} for {m['image']}, expected {expected!r} for {image}")
        width, height = int(m["w"]), int(m["h"])

        shot = screenshot or os.path.join(tmp, "window.png")
        title = f"onevit explain: {os.path.basename(model)}"
        run_tool(["import", "-window", title, shot], "import (ImageMagick)")
        from PIL import Image
        with Image.open(shot) as picture:
            picture = picture.convert("RGB")
            size = picture.size
            colours = len(picture.getcolors(maxcolors=1 << 24) or [])
        print(f"screenshot: {size[0]}x{size[1]}, {colours} distinct colours" + (f", kept at {shot}" if screenshot else ""))
        if size != (width, height):
            failures.append(f"the screenshot is {size[0]}x{size[1]}, the window {width}x{height}")
        if colours < MIN_COLOURS:
            failures.append(f"the screenshot has {colours} distinct colours (< {MIN_COLOURS}): blank?")
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
                failures.append("the app did not exit within 10 s of SIGTERM")
    if app.returncode not in (0, -signal.SIGTERM):
        failures.append(f"the app exited with status {app.returncode}")
    return failures, what


def main(argv=None) -> int:
    ap = argument_parser("the desktop example under Xvfb", keep=True)
    ap.add_argument("--app", required=True, help="the onevit-desktop binary")
    ap.add_argument("--model", help="default: <repo>/weights/digits_vit.ovit")
    ap.add_argument("--image", help="default: <repo>/weights/samples/digit_3_*.png (the first)")
    ap.add_argument("--screenshot", help="also keep the screenshot here")
    args = ap.parse_args(argv)
    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    model = os.path.abspath(args.model or os.path.join(repo, "weights", "digits_vit.ovit"))
    samples = os.path.join(repo, "weights", "samples")
    image = os.path.abspath(args.image or os.path.join(
        samples, sorted(f for f in os.listdir(samples) if f.startswith("digit_3_"))[0]))
    if not os.environ.get("DISPLAY"):
        print("FAIL: no X display: run under xvfb-run -a")
        return 2

    top1 = json.loads(run_tool([onevit, "classify", "--model", model, "--json", "--top", "1", image],
                               "onevit classify").splitlines()[0])["topk"][0]
    label = top1["label"] or f"class {top1['index']}"
    expected = f"{label} {100 * top1['prob']:.3f}%"
    app = os.path.abspath(args.app)
    with scratch_dir("onevit_desktop_", args.keep) as tmp:
        failures, shown = check_app(app, model, image, expected, tmp, args.screenshot)
        # A model without a classifier: the rollout alone, said so, no crash.
        headless = os.path.join(tmp, "headless.ovit")
        write_headless_vit(headless, resolve_converter(repo))
        more, _ = check_app(app, headless, image, NO_CLASSIFIER, tmp, None)
        failures += more
    return report(failures, "the desktop example",
                  f"the window shows onevit classify's top-1 ({shown}), and a model without a classifier's rollout")


if __name__ == "__main__":
    sys.exit(exit_status(main))
