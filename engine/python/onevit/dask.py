"""onevit.dask: image classification on a Dask cluster (Dask distributed).

From the shell, JSON lines with the content of `onevit classify --json`, in input order:

    python3 -m onevit.dask classify --model M [--top K] [--scheduler tcp://HOST:8786] [--workers N] PATH...

From Python, a pandas DataFrame:

    from distributed import Client
    import onevit.dask
    with Client("tcp://HOST:8786") as client:
        table = onevit.dask.classify(client, "/shared/deit_tiny.ovit", paths, top=5)

Each worker loads the model once (ModelPlugin) and keeps it; the workers read the
images themselves, so the model file and the images must be at the same paths
on every worker (shared storage). The paths go to the workers as given: on
several machines, give absolute paths.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from typing import Any, Sequence

import pandas as pd
from distributed import Client, LocalCluster, WorkerPlugin, get_worker, progress

import onevit

__all__ = ["ModelPlugin", "classify", "expand_inputs", "json_line", "main"]

# Images a worker decodes and runs as one batch, as `onevit classify` does.
IMAGES_PER_BATCH = 8


class ModelPlugin(WorkerPlugin):
    """Loads an onevit model on each worker, when the plugin is registered or the
    worker joins, and keeps it for the worker's lifetime.

    The model runs on as many threads as the worker runs tasks, in throughput
    mode: each concurrent task gets a stream of its own."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self.name = f"onevit-model:{model_path}"
        self.model: onevit.Model | None = None

    def setup(self, worker: Any) -> None:
        self.model = onevit.Model(self.model_path, threads=worker.state.nthreads, hint="throughput")

    def teardown(self, worker: Any) -> None:
        self.model = None


def _classify_partition(plugin_name: str, paths: Sequence[str], top: int) -> list[dict]:
    """On a worker: one record per path, in order, as `onevit classify --json` prints them."""
    worker = get_worker()
    plugin = worker.plugins[plugin_name]
    if plugin.model is None:  # setup failed on this worker (it joined later): raise its error to the client
        plugin.setup(worker)
    model = plugin.model
    records = []
    for first in range(0, len(paths), IMAGES_PER_BATCH):
        records += _classify_batch(model, paths[first:first + IMAGES_PER_BATCH], top)
    return records


def _classify_batch(model: onevit.Model, paths: Sequence[str], top: int) -> list[dict]:
    """classify()'s results as `onevit classify --json`'s records: a bad image gets its error in place."""
    records = []
    for path, result in zip(paths, model.classify(list(paths), top)):
        if isinstance(result, onevit.Error):
            records.append({"image": path, "error": str(result)})
        else:
            records.append({"image": path, "topk": [p._asdict() for p in result]})
    return records


def _partition_size(images: int, threads: int) -> int:
    """Images per task: about 8 tasks per worker thread, so that every thread stays
    busy to the end and a lost worker's share is small, and 8 to 64 images per
    task, so that Dask's per-task cost (about a millisecond) stays well under the
    task's own."""
    return max(IMAGES_PER_BATCH, min(64, math.ceil(images / (8 * max(1, threads)))))


def classify(client: Client, model_path: str, paths: Sequence[str], top: int = 5, *,
             show_progress: bool = False) -> pd.DataFrame:
    """Classifies image files on the client's cluster: a DataFrame with one row per
    path, in order, with columns image (the path as given), topk (a list of
    {"index", "label", "prob"} dicts, most probable first, or None) and error
    (the engine's one-line message where the image could not be read, else None).

    Registers a ModelPlugin (every worker loads model_path once); a model that
    cannot be loaded raises onevit.Error. show_progress: Dask's progress bar on stderr.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be an int >= 1, got {top!r}")
    paths = [os.fspath(p) for p in paths]
    plugin = ModelPlugin(model_path)
    client.register_worker_plugin(plugin, name=plugin.name)
    size = _partition_size(len(paths), sum(client.nthreads().values()))
    partitions = [paths[first:first + size] for first in range(0, len(paths), size)]
    futures = client.map(_classify_partition, [plugin.name] * len(partitions), partitions,
                         [top] * len(partitions), key="onevit-classify")
    if show_progress:
        with contextlib.redirect_stdout(sys.stderr):  # Dask's text bar writes to stdout
            progress(futures)
    records = [record for partition in client.gather(futures) for record in partition]
    return pd.DataFrame({
        "image": [r["image"] for r in records],
        "topk": [r.get("topk") for r in records],
        "error": [r.get("error") for r in records],
    })


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """As `onevit classify`: a directory becomes its image files (.jpg, .jpeg, .png, .webp,
    .bmp, .tif, .tiff, any case) and those below it, sorted by path; any other argument is
    kept as given, so a missing file is reported like a bad image. Raises onevit.Error for a
    directory without images."""
    return _expand(inputs)[0]


def _expand(inputs: Sequence[str]) -> tuple[list[str], int]:
    """expand_inputs(), and the count of the other files in the directories (skipped): the
    CLI's own code (list_image_inputs), paths passed as bytes."""
    images, skipped = onevit._core._list_image_inputs([os.fsencode(p) for p in inputs])
    return [os.fsdecode(p) for p in images], skipped


def json_line(row: Any) -> str:
    """One row of classify()'s DataFrame as `onevit classify --json` prints it. json.dumps spaces it as
    the CLI's writer does; using that writer (nlohmann-json) would make the module need it for one line."""
    image = _printable(row.image)
    if row.error is not None:
        return json.dumps({"image": image, "error": _printable(row.error)}, ensure_ascii=False)
    return json.dumps({"image": image, "topk": [dict(p, label=_printable(p["label"])) for p in row.topk]},
                      ensure_ascii=False)


def _printable(text: str) -> str:
    """Bytes of a file name that are not UTF-8 become U+FFFD, as onevit's JSON writer prints them."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2."""

    def error(self, message: str) -> None:
        sys.stderr.write(f"onevit.dask: error: {message} (see 'python3 -m onevit.dask classify --help')\n")
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    def positive(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
        return value

    parser = _OneLineParser(prog="python3 -m onevit.dask",
                            description="Image classification on a Dask cluster.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    command = commands.add_parser(
        "classify", help="the top classes of each image, as JSON lines",
        description="The top classes of each image, one JSON line per image in input order, with the "
                    "content of `onevit classify --json`; Dask's progress bar on stderr when it is a "
                    "terminal.")
    command.add_argument("--model", "-m", required=True, help="model file (.ovit), at this path on every worker")
    command.add_argument("--top", "-k", type=positive, default=5, help="classes to show per image (default 5)")
    where = command.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="a Dask scheduler's address, tcp://HOST:8786 "
                                           "(default: a local cluster on this machine)")
    where.add_argument("--workers", type=positive, default=None,
                       help="worker processes of the local cluster, one thread each (default: the cores)")
    command.add_argument("images", nargs="+", metavar="PATH",
                         help="image files, or directories: their image files and those below them")
    return parser


def _client(args: argparse.Namespace, resources: contextlib.ExitStack) -> Client:
    """A client of --scheduler, or of a local cluster of --workers processes (closed with resources)."""
    if args.scheduler:
        return resources.enter_context(Client(args.scheduler))
    with warnings.catch_warnings():
        # The scheduler's HTTP server tries port 8787 even without a dashboard, and where
        # another cluster holds it, takes another port with a multi-line UserWarning.
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = resources.enter_context(LocalCluster(
            n_workers=args.workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address=None))
    return resources.enter_context(Client(cluster))


def _say(message: str) -> None:
    """One line on stderr, "onevit.dask: " first; a file name's bytes as they are, as the CLI prints them
    (sys.stderr would write an undecodable byte as a backslash escape)."""
    line = f"onevit.dask: {message}\n"
    sys.stderr.flush()
    if hasattr(sys.stderr, "buffer"):
        sys.stderr.buffer.write(os.fsencode(line))
        sys.stderr.buffer.flush()
    else:
        sys.stderr.write(line)


def main(argv: Sequence[str] | None = None) -> int:
    """python3 -m onevit.dask classify ...: exit status 0, or 1 when an image or the run failed."""
    args = _parser().parse_args(argv)
    try:
        images, skipped = _expand(args.images)
        if skipped:
            _say(f"note: {onevit._core._skipped_files_note(skipped)}")
        with contextlib.ExitStack() as resources:
            # Dask's bar redraws itself with carriage returns: for a terminal, not for a log file.
            table = classify(_client(args, resources), args.model, images, args.top,
                             show_progress=sys.stderr.isatty())
    except (onevit.Error, OSError) as e:
        _say(f"error: {e}")
        return 1
    except Exception as e:  # Dask's own failures (a task failing on every worker it tried): one line, too
        _say(f"error: {type(e).__name__}: {e}")
        return 1
    for row in table.itertuples():
        if row.error is not None:
            _say(f"error: {row.error}")
        print(json_line(row))
    return 1 if table["error"].notna().any() else 0


if __name__ == "__main__":
    # Run as onevit.dask, not __main__, so that workers unpickle the tasks by that name.
    from onevit.dask import main as _main
    sys.exit(_main())
