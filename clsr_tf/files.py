"""Atomic writes: a file or a folder appears complete at its final path, or not at all.

Every writer of clsr_tf (metrics, tables, scores, weights, SavedModels, prepared data sets,
loader caches) goes through these helpers, so a kill or an error never leaves a half-written
output, and temporary paths share one pattern: ``<name>.tmp-<pid>-<random>`` beside the target.
Importing this module imports neither TensorFlow nor numpy.
"""

import contextlib
import os
import shutil
import uuid

TMP_MARK = ".tmp-"


def temporary_path(path):
    """A fresh temporary path beside ``path`` (same folder, so a rename is atomic).

    Args:
        path (str): The final path.

    Returns:
        str: ``<path>.tmp-<pid>-<random>``.
    """
    return f"{os.fspath(path)}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def atomic_file(path, mode="w", **open_kwargs):
    """Open a temporary file that replaces ``path`` when the block ends without error.

    Args:
        path (str): Destination file.
        mode (str): ``open`` mode for writing (``w`` or ``wb``).
        **open_kwargs: Passed to ``open`` (e.g. ``encoding``).

    Yields:
        file: The open temporary file.
    """
    tmp = temporary_path(path)
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path, content):
    """Write a whole file (text or bytes) atomically.

    Args:
        path (str): Destination file.
        content (str or bytes): The content.
    """
    binary = isinstance(content, (bytes, bytearray))
    with atomic_file(path, "wb" if binary else "w",
                     **({} if binary else {"encoding": "utf-8"})) as handle:
        handle.write(content)


def replace_dir(tmp, path):
    """Move the complete folder ``tmp`` to ``path``, replacing any folder there.

    Args:
        tmp (str): A complete folder on the same file system as ``path``.
        path (str): Destination folder.
    """
    old = None
    if os.path.isdir(path):
        old = temporary_path(path)
        os.replace(path, old)
    os.replace(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path):
    """A temporary folder that replaces the folder ``path`` when the block ends without error.

    Args:
        path (str): Destination folder (its parent is created if needed).

    Yields:
        str: The temporary folder to fill.
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = temporary_path(path)
    os.makedirs(tmp)
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
