"""A run's output folder: one run at a time, one set of hyper-parameters, no leftovers.

``RunFolder`` is what the commands that train (``train``, ``compare``, ``study``) hold while
they write into their output folder:

- the folder is created (an error names it when it is a file or cannot be written);
- a lock file (``.lock``, holding the owner's pid and host) keeps a second run out while the
  first is alive; the lock of a process that is gone is taken over with a note;
- temporaries (``clsr_tf.files.temporary_path``'s of processes that are gone or of this one,
  and the ``ckpt-N_temp`` folders of TensorFlow's checkpoint writer) are removed on entry and
  on every exit, Ctrl-C and errors included;
- ``start`` applies the rules of a training run: the hyper-parameters are recorded in
  ``hparams.json`` when training starts; ``--resume`` continues only with the recorded values
  (``clsr_tf.hparams.RESUMABLE_KEYS`` may change); a fresh run refuses a folder that holds
  a run unless ``--overwrite``, which clears the run's outputs first.

Importing this module imports neither TensorFlow nor numpy.
"""

import fcntl
import json
import os
import re
import shutil
import socket
import sys

from clsr_tf.files import sweep_temporaries, write_atomic
from clsr_tf.hparams import IGNORED_KEYS, RESUMABLE_KEYS

LOCK_FILE = ".lock"
HPARAMS_FILE = "hparams.json"
# CLSRSequentialModel.fit's checkpoint folder and the temporaries TensorFlow's checkpoint
# writer keeps there until a save completes (<prefix>_temp/).
CHECKPOINTS = "checkpoints"
_CHECKPOINT_TEMP = re.compile(r"^ckpt-\d+_temp$")
# What ``python -m clsr_tf.train`` writes into its folder.
TRAIN_OUTPUTS = ("metrics.json", HPARAMS_FILE, CHECKPOINTS, "best_model", "logs")
# What a run leaves once it has trained an epoch: only these make a folder "hold a run" (an
# attempt that failed on its input, or was killed in its first epoch, left at most
# hparams.json and logs, which a fresh run replaces).
TRAINED = ("metrics.json", CHECKPOINTS, "best_model")


class RunFolderError(ValueError):
    """An output folder that cannot be used as asked (in use, holds another run, not
    writable)."""


def _canonical(values):
    """JSON-normal form of hyper-parameters (tuples -> lists; other types -> str)."""
    return json.loads(json.dumps(values, default=str, sort_keys=True))


def recorded_hparams(folder):
    """The hyper-parameters recorded in a run folder.

    Args:
        folder (str): A run folder.

    Returns:
        dict: The recorded values, or None when the folder has no ``hparams.json``.

    Raises:
        RunFolderError: ``hparams.json`` is not a JSON object.
    """
    path = os.path.join(folder, HPARAMS_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except ValueError as err:
        raise RunFolderError(f"{path}: not JSON ({err})") from None
    if not isinstance(values, dict):
        raise RunFolderError(f"{path}: expected a JSON object")
    return values


def record_hparams(folder, hp):
    """Write the hyper-parameters of a run into its folder (atomically).

    Args:
        folder (str): The run folder.
        hp (dict): Hyper-parameters.
    """
    write_atomic(os.path.join(folder, HPARAMS_FILE),
                 json.dumps(_canonical(hp), indent=2, sort_keys=True))


def differing_keys(recorded, current, may_change=RESUMABLE_KEYS):
    """Keys whose value differs between a run and its continuation.

    Args:
        recorded (dict): The run's recorded hyper-parameters.
        current (dict): The continuation's.
        may_change (frozenset): Keys left out of the comparison (besides ``IGNORED_KEYS``).

    Returns:
        list: (key, recorded value, current value), for keys outside ``may_change``
        and ``IGNORED_KEYS``; a key missing on one side has the value None there.
    """
    recorded, current = _canonical(recorded), _canonical(current)
    return [(key, recorded.get(key), current.get(key))
            for key in sorted(set(recorded) | set(current), key=str)
            if key not in may_change | IGNORED_KEYS and recorded.get(key) != current.get(key)]


def check_continuation(folder, hp, how, finished=False):
    """Refuse to continue (or, ``finished``, to reuse) the run in ``folder`` with other
    hyper-parameters.

    Args:
        folder (str): The run folder.
        hp (dict): The hyper-parameters of the continuation.
        how (str): What to do instead, appended to the error (e.g. ``pass --overwrite``).
        finished (bool): The run has finished and is to be read back: every key must match
            (a folder without ``hparams.json`` matches nothing), not only those outside
            ``RESUMABLE_KEYS``.

    Raises:
        RunFolderError: The recorded hyper-parameters differ where they must not.
    """
    recorded = recorded_hparams(folder)
    if recorded is None and not finished:
        return
    changed = differing_keys(recorded or {}, hp, frozenset() if finished else RESUMABLE_KEYS)
    if changed:
        listed = ", ".join(f"{key} {old!r} (now {new!r})" for key, old, new in changed)
        rule = ("it has finished, so none may differ" if finished else
                f"only {', '.join(sorted(RESUMABLE_KEYS))} may change when it continues")
        raise RunFolderError(
            f"{folder}: the run there was trained with other hyper-parameters: {listed}; "
            f"{rule}; {how}")


class RunFolder:
    """Hold an output folder for one run (a context manager; see the module docstring).

    Args:
        path (str): The folder (created if needed).
        outputs (tuple): Names of the run's outputs in the folder: what makes it hold a run
            and what ``--overwrite`` removes (``TRAIN_OUTPUTS`` for a training run).
        option (str): The command-line option that names the folder, for messages.

    Raises:
        RunFolderError: On entry: ``path`` is a file or cannot be created or written, or
            another live process holds it.
    """

    def __init__(self, path, outputs=(), option="--output-dir"):
        self.path, self.outputs, self.option = os.fspath(path), tuple(outputs), option
        self._lock = None

    # ---- holding the folder --------------------------------------------------------------
    def __enter__(self):
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise RunFolderError(f"{self.option} {self.path}: is a file, not a folder")
        try:
            os.makedirs(self.path, exist_ok=True)
            self._acquire()
        except OSError as err:
            raise RunFolderError(f"{self.option} {self.path}: cannot write there "
                                 f"({err.strerror or err})") from None
        self.sweep()
        return self

    def __exit__(self, *exc):
        self.sweep()
        self._release()
        return False

    def _acquire(self):
        """Take the lock file: flock (released by the kernel if we die), our pid inside."""
        path = os.path.join(self.path, LOCK_FILE)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunFolderError(
                    f"{self.option} {self.path}: in use by another run (process {owner}, lock "
                    f"{path}); wait for it to end or choose another {self.option}") from None
            if os.path.exists(path) and os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
            os.close(fd)  # the previous owner removed the file meanwhile: lock the new one
        previous = os.read(fd, 200).decode(errors="replace").strip()
        if previous:
            print(f"note: {path}: took over the lock of process {previous}, which is gone",
                  file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self._lock = fd

    def _release(self):
        if self._lock is None:
            return
        os.remove(os.path.join(self.path, LOCK_FILE))  # before the unlock: no one holds it
        os.close(self._lock)
        self._lock = None

    def sweep(self):
        """Remove the temporaries left in the folder and its subfolders: of processes that are
        gone, and this one's (it holds the folder and is not writing: on entry or exit).

        Returns:
            list: The removed paths.
        """
        removed = []
        for folder, names, _ in os.walk(self.path):
            removed += sweep_temporaries(folder, own=True)
            if os.path.basename(folder) == CHECKPOINTS:  # only the lock's holder saves there
                for name in [n for n in names if _CHECKPOINT_TEMP.match(n)]:
                    shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
                    removed.append(os.path.join(folder, name))
            names[:] = [n for n in names if os.path.isdir(os.path.join(folder, n))]  # not gone
        return removed

    # ---- a training run ------------------------------------------------------------------
    def used(self):
        """The run outputs present in the folder.

        Returns:
            list: Names of ``outputs`` that exist.
        """
        return [name for name in self.outputs if os.path.lexists(os.path.join(self.path, name))]

    def start(self, hp, resume=False, overwrite=False):
        """Apply a training run's rules and record its hyper-parameters.

        Args:
            hp (dict): The run's hyper-parameters.
            resume (bool): Continue the run in the folder (``--resume``).
            overwrite (bool): Replace the run in the folder (``--overwrite``).

        Raises:
            RunFolderError: Both flags; a fresh run into a folder holding a run; a resume
                with other hyper-parameters, or of checkpoints without ``hparams.json``.
        """
        if resume and overwrite:
            raise RunFolderError("give either --resume or --overwrite")
        used = self.used()
        if overwrite:
            for name in used:
                path = os.path.join(self.path, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        elif resume:
            if recorded_hparams(self.path) is None and CHECKPOINTS in used:
                raise RunFolderError(
                    f"{self.path}: checkpoints without {HPARAMS_FILE} (an older clsr_tf): "
                    "their hyper-parameters cannot be checked; pass --overwrite to start again")
            check_continuation(self.path, hp, "pass --overwrite to start again, or another "
                                              f"{self.option}")
            if "metrics.json" in used:  # it describes the run before this continuation
                os.remove(os.path.join(self.path, "metrics.json"))
        elif any(name in TRAINED for name in used):
            raise RunFolderError(
                f"{self.option} {self.path}: holds a run ({', '.join(used)}); pass --resume to "
                "continue it or --overwrite to replace it")
        record_hparams(self.path, hp)
