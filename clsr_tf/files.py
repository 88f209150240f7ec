"""Atomic writes: a file or a folder appears complete at its final path, or not at all.

Every writer of clsr_tf (metrics, tables, scores, weights, SavedModels, prepared data sets,
loader caches) goes through these helpers, so a kill or an error never leaves a half-written
output, and temporary paths share one pattern: ``<name>.tmp-<pid>-<random>`` beside the target.
What a killed process left behind is removed by the next writer of the same target, or of
the same run folder (``sweep_temporaries``), once that process is gone.
Importing this module imports neither TensorFlow nor numpy.
"""

import contextlib
import os
import re
import shutil
import uuid

TMP_MARK = ".tmp-"
# A temporary path of ``temporary_path``: group 1 is the target, group 2 the writer's pid.
TMP_PATTERN = re.compile(r"^(.*)" + re.escape(TMP_MARK) + r"(\d+)-[0-9a-f]{8}$")


def pid_alive(pid):
    """Whether a process ``pid`` exists on this machine.

    Args:
        pid (int): Process id.

    Returns:
        bool: True unless no such process exists.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    except OverflowError:  # past any pid
        return False
    return True


def _remove(path):
    """Remove a file or folder; False when it cannot be (it stays for a later sweep)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return not os.path.exists(path)
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def sweep_temporaries(folder, own=False, target=None):
    """Remove the temporary files and folders that writers left in ``folder``.

    Only names of ``temporary_path``'s pattern are touched, and only those of processes that
    are gone (and of this one when ``own``).

    Args:
        folder (str): The folder (not recursive).
        own (bool): Also remove this process's temporaries (it holds the folder and is not
            writing).
        target (str): Only the temporaries of this name (e.g. ``metrics.json``).

    Returns:
        list: The removed paths.
    """
    removed = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return removed
    for name in names:
        match = TMP_PATTERN.match(name)
        if not match or (target is not None and match.group(1) != target):
            continue
        pid = int(match.group(2))
        if (own and pid == os.getpid()) or not pid_alive(pid):
            path = os.path.join(folder, name)
            if _remove(path):
                removed.append(path)
    return removed


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
    sweep_temporaries(os.path.dirname(os.path.abspath(path)), target=os.path.basename(path))
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
    sweep_temporaries(os.path.dirname(path), target=os.path.basename(path))
    tmp = temporary_path(path)
    os.makedirs(tmp)
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
