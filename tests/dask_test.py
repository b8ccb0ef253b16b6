#!/usr/bin/python3
"""onevit.dask against `onevit classify --json`, on a LocalCluster of 2 worker processes.

The DeiT-tiny of ../shared/data (converted here, as README shows) classifies the
250 photos of ../shared/data/imagenet-sample/, plus a missing file and a file
that is not an image:
  1. `python3 -m onevit.dask classify --workers 2` prints the same JSON lines as
     `onevit classify --json` (same records in the same order, error lines
     included; compared as parsed JSON, exactly), with no progress bar on a
     stderr that is not a terminal, and exit status 1 (an image failed), as the
     program's; with stderr a terminal (script(1)'s pty), Dask's progress bar;
     a directory tree (subfolders, WebP/BMP/TIFF, a text file) expands to the
     program's images, in its order, with the same one-line note; a directory without
     images is the program's one-line error (also where its name is not UTF-8);
  2. a model file the workers cannot load is one line on stderr, exit status 1;
  3. onevit.dask.classify() on a LocalCluster of 2 workers, one of which is
     killed (SIGKILL) in the middle of the run, still gives every image exactly
     once, in order, with the same records.

    PYTHONPATH=build/engine/python /usr/bin/python3 tests/dask_test.py --onevit build/apps/onevit

Exit status: 0 pass, 1 a check failed, 2 a tool failed, 77 data not found (skip).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (TOOL_ENV, ToolError, argument_parser, exit_status, report,  # noqa: E402
                     resolve_converter, resolve_onevit, run_tool, scratch_dir)

SKIP = 77
POLL_S = 0.05


def convert_deit(data: str, repo: str, tmp: str) -> str:
    model = os.path.join(tmp, "deit_tiny.ovit")
    run_tool([sys.executable, resolve_converter(repo), os.path.join(data, "deit_tiny_patch16_224", "model.safetensors"),
              "--arch", "deit_tiny_patch16_224", "--labels", os.path.join(data, "labels", "imagenet_classes.txt"),
              "-o", model], "converter")
    return model


def run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def compare_lines(got: list[str], expected: list[str], what: str, failures: list[str]) -> None:
    """Same number of lines, each the same JSON record (parsed: floats compared exactly)."""
    if len(got) != len(expected):
        failures.append(f"{what}: {len(got)} lines, `onevit classify --json` printed {len(expected)}")
    for i, (g, e) in enumerate(zip(got, expected)):
        if json.loads(g) != json.loads(e):
            failures.append(f"{what}: line {i + 1} differs:\n    got      {g}\n    expected {e}")
            if len(failures) > 10:
                return


def check_command(model: str, inputs: list[str], expected: list[str], env: dict, failures: list[str]) -> None:
    result = run([sys.executable, "-m", "onevit.dask", "classify", "--model", model, "--workers", "2", *inputs], env)
    if result.returncode != 1:
        failures.append(f"python3 -m onevit.dask: exit {result.returncode}, expected 1 (two bad images)\n"
                        f"{result.stderr[-3000:]}")
    compare_lines(result.stdout.splitlines(), expected, "python3 -m onevit.dask", failures)
    if "Completed" in result.stderr:
        failures.append("python3 -m onevit.dask: Dask's progress bar on a stderr that is not a terminal")
    errors = [line for line in result.stderr.splitlines() if line.startswith("onevit.dask: error: ")]
    if len(errors) != 2:
        failures.append(f"python3 -m onevit.dask: {len(errors)} error lines on stderr, expected 2: {errors}")


def check_progress_on_a_terminal(model: str, images: list[str], expected: list[str], tmp: str, env: dict,
                                  failures: list[str]) -> None:
    """With stderr a terminal (script(1)'s pty), Dask's progress bar is there; stdout is as without one."""
    if not shutil.which("script"):
        print("SKIP progress check: needs script(1) (util-linux)")
        return
    out = os.path.join(tmp, "terminal.jsonl")
    command = shlex.join([sys.executable, "-m", "onevit.dask", "classify", "--model", model, "--workers", "1",
                          *images]) + " > " + shlex.quote(out)
    terminal = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=600, env=env)
    screen = terminal.stdout.decode(errors="replace")
    if terminal.returncode != 0 or "100% Completed" not in screen:
        failures.append(f"python3 -m onevit.dask on a terminal: exit {terminal.returncode}, no Dask progress bar: "
                        f"{screen[-2000:]!r}")
    with open(out) as f:
        compare_lines(f.read().splitlines(), expected, "python3 -m onevit.dask on a terminal", failures)


def check_directory_tree(onevit_bin: str, model: str, photos: list[str], tmp: str, env: dict,
                         failures: list[str]) -> None:
    """A tree of images in subfolders, of every format, and a file of another type: the images
    `onevit classify` finds there, in its order, and its note on the skipped file."""
    from PIL import Image
    tree = os.path.join(tmp, "tree")
    os.makedirs(os.path.join(tree, "b", "c"))
    with Image.open(photos[0]) as photo:
        small = photo.convert("RGB").resize((48, 40))
    for name in ("z.JPG", "b/a.webp", "b/c/d.bmp", "b/c/e.tiff", "a.png"):
        small.save(os.path.join(tree, name))
    with open(os.path.join(tree, "b", "notes.txt"), "w") as f:
        f.write("not an image")
    program = run([onevit_bin, "classify", "--json", "--model", model, tree], env)
    result = run([sys.executable, "-m", "onevit.dask", "classify", "--model", model, "--workers", "1", tree], env)
    if result.returncode != 0 or program.returncode != 0:
        failures.append(f"a directory tree: exit {result.returncode} (onevit classify: {program.returncode}): "
                        f"{result.stderr[-2000:]}")
    compare_lines(result.stdout.splitlines(), program.stdout.splitlines(), "a directory tree", failures)
    if len(program.stdout.splitlines()) != 5:
        failures.append(f"a directory tree: onevit classify found {len(program.stdout.splitlines())} images, not 5")
    notes = [line for line in result.stderr.splitlines() if "note:" in line]
    expected_note = program.stderr.strip().replace("onevit: note:", "onevit.dask: note:")
    if notes != [expected_note]:
        failures.append(f"a directory tree: notes {notes}, expected [{expected_note!r}]")

    # A directory without images (a name that is not UTF-8 too): the program's one-line error.
    for name in (b"empty", b"empty-\xff"):
        empty = os.path.join(os.fsencode(tmp), name)
        os.makedirs(os.path.join(empty, b"sub"))
        with open(os.path.join(empty, b"sub", b"notes.txt"), "w") as f:
            f.write("not an image")
        program = subprocess.run([onevit_bin, "classify", "--model", model, empty], capture_output=True, env=env)
        result = subprocess.run([sys.executable, "-m", "onevit.dask", "classify", "--model", model, empty],
                                capture_output=True, env=env)
        expected_error = program.stderr.replace(b"onevit: error:", b"onevit.dask: error:")
        if (result.returncode, result.stderr) != (1, expected_error) or program.returncode != 1:
            failures.append(f"a directory without images {name!r}: exit {result.returncode}, stderr "
                            f"{result.stderr[-2000:]!r}; expected 1, {expected_error!r} (onevit classify: exit "
                            f"{program.returncode})")


@contextlib.contextmanager
def holding_port(port: int):
    """Holds 127.0.0.1:port while the block runs if it is free (if not, another program holds it: as good)."""
    try:
        server = socket.create_server(("127.0.0.1", port))
    except OSError:
        server = None
    try:
        yield
    finally:
        if server is not None:
            server.close()


def check_missing_model(tmp: str, image: str, env: dict, failures: list[str]) -> None:
    """A model the workers cannot load: the engine's one-line message, exit 1, no output; also while
    another program holds Dask's default HTTP port 8787 (bound here if it is free)."""
    missing = os.path.join(tmp, "missing.ovit")
    with holding_port(8787):
        result = run([sys.executable, "-m", "onevit.dask", "classify", "--model", missing, "--workers", "1", image],
                     env)
    expected = f"onevit.dask: error: {missing}: cannot open: No such file or directory"
    if result.returncode != 1 or result.stdout or result.stderr.splitlines() != [expected]:
        failures.append(f"missing model: exit {result.returncode}, stdout {result.stdout!r}, stderr "
                        f"{result.stderr[-2000:]!r}; expected exit 1 and only {expected!r}")


class WorkerKiller(threading.Thread):
    """Kills (SIGKILL) one worker process with tasks in hand once some of onevit's tasks are done."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.done_at_kill: tuple[int, int] | None = None  # (tasks finished, tasks in all) when it killed
        self.killed_pid: int | None = None
        self.stop = threading.Event()

    def run(self):
        def onevit_tasks(dask_scheduler):
            states = [ts.state for key, ts in dask_scheduler.tasks.items() if str(key).startswith("onevit-classify")]
            return sum(state == "memory" for state in states), len(states)

        while not self.stop.is_set():
            done, total = self.client.run_on_scheduler(onevit_tasks)
            busy = [address for address, keys in self.client.processing().items() if keys]
            if done >= 2 and busy:
                pid = self.client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                self.done_at_kill, self.killed_pid = (done, total), pid
                return
            time.sleep(POLL_S)


def check_killed_worker(model: str, inputs: list[str], expected: list[str], failures: list[str]) -> None:
    from distributed import Client, LocalCluster
    import onevit.dask

    images = onevit.dask.expand_inputs(inputs)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        killer = WorkerKiller(client)
        killer.start()
        table = onevit.dask.classify(client, model, images, top=5)
        killer.stop.set()
        killer.join()
    if killer.done_at_kill is None:
        failures.append("the run finished before a worker could be killed")
    else:
        done, total = killer.done_at_kill
        print(f"killed worker pid {killer.killed_pid} with {done} of {total} tasks done")
        if done >= total:
            failures.append(f"the worker was killed after the run ({done} of {total} tasks done)")
    if table["image"].tolist() != images:
        failures.append("onevit.dask.classify: the rows are not the input images, each once, in order")
    compare_lines([onevit.dask.json_line(row) for row in table.itertuples()], expected,
                  "onevit.dask.classify with a worker killed", failures)


def main(argv=None) -> int:
    ap = argument_parser(__doc__.splitlines()[0], keep=True)
    ap.add_argument("--data", default=os.environ.get("ONEVIT_DATA", os.path.join(os.path.dirname(HERE), "..",
                                                                                  "shared", "data")))
    args = ap.parse_args(argv)
    onevit_bin = resolve_onevit(args.onevit, args.repo)
    samples = os.path.join(args.data, "imagenet-sample")
    if not os.path.isdir(samples) or not os.path.isdir(os.path.join(args.data, "deit_tiny_patch16_224")):
        print(f"SKIP: shared data not found under {args.data}")
        return SKIP

    env = dict(TOOL_ENV)  # the same PYTHONPATH for the workers LocalCluster starts
    failures: list[str] = []
    with scratch_dir("onevit_dask_", args.keep) as tmp:
        model = convert_deit(args.data, args.repo, tmp)
        garbage = os.path.join(tmp, "not_an_image.png")
        with open(garbage, "w") as f:
            f.write("not an image")
        inputs = [samples, os.path.join(tmp, "missing.jpg"), garbage]
        program = run([onevit_bin, "classify", "--json", "--model", model, *inputs], env)
        if program.returncode != 1:
            raise ToolError(f"onevit classify: exit {program.returncode}, expected 1\n{program.stderr}")
        expected = program.stdout.splitlines()
        check_command(model, inputs, expected, env, failures)
        few = sorted(os.path.join(samples, name) for name in os.listdir(samples))[:3]
        check_progress_on_a_terminal(model, few, expected[:3], tmp, env, failures)
        check_directory_tree(onevit_bin, model, few, tmp, env, failures)
        check_missing_model(tmp, os.path.join(samples, sorted(os.listdir(samples))[0]), env, failures)
        check_killed_worker(model, inputs, expected, failures)
    return report(failures, "onevit.dask differs from onevit classify --json",
                  f"onevit.dask gives onevit classify --json's {len(expected)} lines, also with a worker killed")


if __name__ == "__main__":
    sys.exit(exit_status(main))
