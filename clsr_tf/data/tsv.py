"""Tokenizer and parser of Recommenders sequential lines into per-line and flat arrays.

Line format: ``label<TAB>user<TAB>item<TAB>cate<TAB>timestamp<TAB>item_hist<TAB>cate_hist
<TAB>time_hist``, the three histories comma-separated and of equal length. A chunk of whole
lines is split into tokens on its raw bytes with numpy, ids go through ``ByteVocab``,
plain-digit numbers are parsed arithmetically (SWAR), and the time features are computed on
the flat history arrays exactly as ``SequentialIterator.parser_one_line`` computes them.
"""

import numpy as np

from clsr_tf.data.errors import DataFormatError

# Tab-separated fields of a line, in order (names used in DataFormatError).
FIELDS = ("label", "user", "item", "category", "timestamp", "item_history",
          "category_history", "time_history")

# A parsed chunk: arrays of one value per line (LINE_KEYS), and flat arrays of the kept (last
# max_seq_length) history entries of every line, line after line (POSITION_KEYS).
LINE_KEYS = ("labels", "users", "items", "cates", "time", "length")

_FRONT = 24  # bytes before a chunk, so 16-byte reads ending at a token stay in bounds
_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(9)], dtype=np.uint64)
_ZEROS = np.uint64(0x3030303030303030)  # "00000000"
_KEEP, _FILL = ~_MASKS, _MASKS & _ZEROS  # keep the top bytes, fill the low ones with "0"
_SIXES = np.uint64(0x0606060606060606)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
# What str.strip() removes: ASCII whitespace bytes and the UTF-8 of the other spaces.
_ASCII_SPACE = np.array([chr(c).isspace() for c in range(256)]) & (np.arange(256) < 128)
_EDGE = _ASCII_SPACE | (np.arange(256) >= 128)
_SPACES = [np.frombuffer(chr(c).encode("utf-8"), dtype=np.uint8)
           for c in range(128, 0x3001) if chr(c).isspace()]


def ranges(starts, counts):
    """Concatenation of ``arange(s, s + c)`` over the pairs, vectorised.

    Args:
        starts (np.ndarray): First value of each range.
        counts (np.ndarray): Length of each range.

    Returns:
        np.ndarray: int64 array of ``counts.sum()`` values.
    """
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if len(ends) else 0) + np.repeat(starts - (ends - counts), counts)


def read_chunks(path, chunk_bytes):
    """Yield the UTF-8 bytes of whole lines of a file, each line ending in a newline.

    Line ends are read as text mode reads them: CR LF and a lone CR become LF.

    Args:
        path (str): The file.
        chunk_bytes (int): Bytes read at a time (a chunk is extended to a line end).

    Yields:
        bytes: A chunk of whole lines.

    Raises:
        DataFormatError: The file is not UTF-8 (naming the line and field of the first bad
            byte).
    """
    line = 1
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk_bytes)
            if not data:
                return
            if not data.endswith(b"\n"):
                data += f.readline()
            try:
                if b"\r" in data:
                    data = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
                    data = data.encode("utf-8")
                elif not data.isascii():
                    data.decode("utf-8")  # raises on bytes that are not UTF-8
            except UnicodeDecodeError as err:
                raise _not_utf8(path, data, line, err) from None
            if not data.endswith(b"\n"):
                data += b"\n"
            line += data.count(b"\n")
            yield data


def _not_utf8(path, data, first_line, err):
    """The DataFormatError of the first byte of a chunk that is not UTF-8."""
    before = data[:err.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head = before.rpartition(b"\n")[2]
    field = FIELDS[min(head.count(b"\t"), len(FIELDS) - 1)]
    return DataFormatError(path, first_line + before.count(b"\n"), field,
                           f"not UTF-8 (byte 0x{data[err.start]:02x} at character "
                           f"{len(head.decode('utf-8', 'replace')) + 1} of the line)")


class LineParser:
    """Parse chunks of lines into ``LINE_KEYS`` and ``POSITION_KEYS`` arrays.

    Args:
        users (ByteVocab): User vocabulary.
        items (ByteVocab): Item vocabulary.
        cates (ByteVocab): Category vocabulary.
        max_seq_length (int): History entries kept per line (the last ones).
        time_range (float): Time units per "day" of the time features.
    """

    def __init__(self, users, items, cates, max_seq_length, time_range):
        self.users, self.items, self.cates = users, items, cates
        self.max_seq_length = int(max_seq_length)
        self.time_range = float(time_range)
        self.back = 8 * max(v.n_words for v in (users, items, cates)) + 8

    def parse_file(self, path, chunk_bytes):
        """Parsed chunks of a file, in order.

        Args:
            path (str): A Recommenders sequential file.
            chunk_bytes (int): Bytes of text parsed at a time.

        Yields:
            dict: The arrays of one chunk (see ``parse``).
        """
        line = 1
        for data in read_chunks(path, chunk_bytes):
            ragged = self.parse(path, data, line)
            line += len(ragged["labels"])
            yield ragged

    def parse(self, path, data, first_line, raw=None):
        """Parse whole lines into per-line and flat (truncated) history arrays.

        Args:
            path (str): File name, for errors.
            data (bytes): Lines, each ending in a newline.
            first_line (int): 1-based line number of the first line.
            raw (bytes): The lines as read when ``data`` is their ``_normalize`` (for
                errors), else None.

        Returns:
            dict: ``LINE_KEYS`` arrays per line and ``POSITION_KEYS`` arrays of the last
            ``max_seq_length`` history entries of each line, line after line.

        Raises:
            DataFormatError: On the first malformed line.
        """
        # Positions are offsets in ``padded``: the chunk after _FRONT bytes whose last one is a
        # comma, so that token k starts after separator k - 1 (token 0 after that comma).
        padded = np.empty(_FRONT + len(data) + self.back, dtype=np.uint8)
        padded[:_FRONT] = 0
        padded[_FRONT - 1] = 44
        padded[_FRONT:_FRONT + len(data)] = np.frombuffer(data, dtype=np.uint8)
        padded[_FRONT + len(data):] = 0
        region = padded[_FRONT - 1:_FRONT + len(data)]
        is_sep = region == 9
        is_sep |= region == 10
        is_sep |= region == 44
        bounds = np.flatnonzero(is_sep) + (_FRONT - 1)  # bounds[k + 1] ends token k
        sep = bounds[1:]
        kind = padded[sep]
        nl_tok = np.flatnonzero(kind == 10)
        newlines = sep[nl_tok]
        n = len(newlines)
        line_starts = np.concatenate([[_FRONT], newlines[:-1] + 1])
        if raw is None and _has_edge_space(padded, line_starts, newlines):
            return self.parse(path, _normalize(data), first_line, data)
        tab_tok = np.flatnonzero(kind == 9)
        n_fields = np.diff(np.searchsorted(tab_tok, nl_tok), prepend=0) + 1
        bad = np.flatnonzero(n_fields != len(FIELDS))
        if bad.size:
            r = int(bad[0])
            if r:
                head = line_starts[r] - _FRONT
                self.parse(path, data[:head], first_line,
                           None if raw is None else _first_lines(raw, r))
            line = (data if raw is None else raw).split(b"\n", r + 1)[r]
            raise _field_count_error(path, first_line + r, line)
        tabs = tab_tok.reshape(n, len(FIELDS) - 1)
        history_starts = sep[tabs[:, 4:]] + 1
        history_ends = np.stack([sep[tabs[:, 5]], sep[tabs[:, 6]], newlines], axis=1)
        if raw is None and _has_edge_space(padded, history_starts.ravel(),
                                           history_ends.ravel()):
            return self.parse(path, _normalize(data), first_line, data)
        # A comma before the fifth tab is part of a label/user/item/category/timestamp token.
        if (tabs[:, 4] - np.concatenate([[0], nl_tok[:-1] + 1]) != 4).any():
            commas = np.flatnonzero(kind == 44)
            sep = np.delete(sep, commas[commas < tabs[np.searchsorted(nl_tok, commas), 4]])
            bounds = np.concatenate([[_FRONT - 1], sep])
            kind = padded[sep]
            nl_tok = np.flatnonzero(kind == 10)
            tabs = np.flatnonzero(kind == 9).reshape(n, len(FIELDS) - 1)

        def span(tok):
            first = bounds[tok] + 1
            return first, sep[tok] - first

        errors = []
        counts = (tabs[:, 5] - tabs[:, 4], tabs[:, 6] - tabs[:, 5], nl_tok - tabs[:, 6])
        for rank, count in ((6, counts[1]), (7, counts[2])):
            wrong = np.flatnonzero(count != counts[0])
            if wrong.size:
                r = int(wrong[0])
                errors.append((r, rank, f"{int(count[r])} entries, but item_history has "
                                        f"{int(counts[0][r])}"))

        def numbers(tok, rank, integer=False):
            values, k, text = _numbers(data, padded, *span(tok), integer)
            if k is not None:
                errors.append((int(np.searchsorted(nl_tok, tok[k])), rank,
                               f"not {'an integer' if integer else 'a number'} ({text!r})"))
            return values

        def finite(values, tok, rank):
            k = np.flatnonzero(~np.isfinite(values))
            if k.size:
                start, length = span(tok[k[:1]])
                text = data[start[0] - _FRONT:start[0] - _FRONT + length[0]].decode("utf-8")
                errors.append((int(np.searchsorted(nl_tok, tok[k[0]])), rank,
                               f"not a finite number ({text!r})"))

        parsed = len(errors)
        labels = numbers(tabs[:, 0], 0, integer=True)
        off = np.flatnonzero((labels != 0) & (labels != 1))
        if off.size and len(errors) == parsed:
            errors.append((int(off[0]), 0, f"not 0 or 1 ({int(labels[off[0]])})"))
        now = numbers(tabs[:, 4], 4)
        finite(now, tabs[:, 4], 4)
        time_tok = ranges(tabs[:, 6] + 1, counts[2])
        times = numbers(time_tok, 7)
        finite(times, time_tok, 7)
        if errors:
            r, rank, message = min(errors)
            raise DataFormatError(path, first_line + r, FIELDS[rank], message)

        length = counts[0]
        kept = np.minimum(length, self.max_seq_length)
        nul = b"\0" in data

        def ids(vocab, tok):
            return vocab.lookup(padded, *span(tok), nul)

        out = {
            "labels": labels.astype(np.float32),
            "users": ids(self.users, tabs[:, 1]),
            "items": ids(self.items, tabs[:, 2]),
            "cates": ids(self.cates, tabs[:, 3]),
            "time": now.astype(np.float32),
            "length": length.astype(np.int32),
            "item_history": ids(self.items, ranges(tabs[:, 5] + 1 - kept, kept)),
            "item_cate_history": ids(self.cates, ranges(tabs[:, 6] + 1 - kept, kept)),
        }
        out.update(time_features(times, now, length, kept, self.time_range))
        return out


def time_features(times, now, length, kept, day):
    """Log day-scaled gaps of the kept (last L) history entries, as ``parser_one_line``.

    Args:
        times (np.ndarray): float64 time history of all lines, flat.
        now (np.ndarray): float64 target timestamp per line.
        length (np.ndarray): Full history length per line.
        kept (np.ndarray): Entries kept per line (``min(length, L)``).
        day (float): Time units per day.

    Returns:
        dict: ``time_diff``, ``time_from_first_action``, ``time_to_now`` (flat float32).
    """
    first = np.cumsum(length) - length
    idx = ranges(first + length - kept, kept)
    line = np.repeat(np.arange(len(length)), kept)
    t = times[idx]
    current = now[line]
    following = np.where(idx == (first + length - 1)[line], current,
                         times[np.minimum(idx + 1, len(times) - 1)])
    return {
        "time_diff": np.log(np.maximum((following - t) / day, 0.5)).astype(np.float32),
        "time_from_first_action": np.log(np.maximum(
            (following - times[first][line]) / day, 0.5)).astype(np.float32),
        "time_to_now": np.log(np.maximum((current - t) / day, 0.5)).astype(np.float32),
    }


def _first_lines(data, n):
    """The first ``n`` lines of a chunk."""
    end = -1
    for _ in range(n):
        end = data.index(b"\n", end + 1)
    return data[:end + 1]


def _field_count_error(path, line, text):
    """The DataFormatError of a line without the 8 tab-separated fields.

    Args:
        path (str): The file.
        line (int): Its 1-based line number.
        text (bytes): The line as read (before ``str.strip``).

    Returns:
        DataFormatError: Naming the first missing (or extra) field.
    """
    words = text.decode("utf-8").strip().split("\t")
    found = len(words) if words != [""] else 0
    if not found:
        return DataFormatError(path, line, None, "an empty line")
    given = text.decode("utf-8").split("\t")
    empty = [FIELDS[k] for k in range(found, len(FIELDS))
             if len(given) == len(FIELDS) and not given[k].strip()]
    if empty:  # strip() ate empty last fields
        names = ", ".join(empty[:-1]) + " and " * (len(empty) > 1) + empty[-1]
        what = names + (" are" if len(empty) > 1 else " is") + " empty"
        if found == 5:
            what += ": every line needs a history of at least one entry"
        return DataFormatError(path, line, empty[0], what)
    return DataFormatError(path, line, FIELDS[min(found, len(FIELDS) - 1)],
                           f"{found} tab-separated fields, expected {len(FIELDS)}")


def _normalize(data):
    """Apply the iterator's ``str.strip`` calls (line, and the three history fields).

    Args:
        data (bytes): Chunk of whole lines, each ending in a newline.

    Returns:
        bytes: The same lines, stripped.
    """
    out = []
    for line in data.decode("utf-8").split("\n")[:-1]:
        words = line.strip().split("\t")
        if len(words) == len(FIELDS):
            words[5:] = [w.strip() for w in words[5:]]
        out.append("\t".join(words))
    return ("\n".join(out) + "\n").encode("utf-8")


def _has_edge_space(padded, starts, ends):
    """Whether any non-empty span [start, end) of the chunk begins or ends with whitespace.

    Args:
        padded (np.ndarray): The chunk, after ``_FRONT`` bytes.
        starts (np.ndarray): Span starts (offsets in ``padded``).
        ends (np.ndarray): Span ends (offsets in ``padded``).

    Returns:
        bool: True where ``str.strip`` would change a span.
    """
    full = ends > starts
    first, last = starts[full], ends[full]
    head, tail = padded[first], padded[last - 1]
    if not (_EDGE[head].any() or _EDGE[tail].any()):
        return False
    if _ASCII_SPACE[head].any() or _ASCII_SPACE[tail].any():
        return True
    lead, trail = first[head >= 0xC2], last[tail >= 0x80]
    for space in _SPACES:
        k = len(space)
        if ((padded[lead[:, None] + np.arange(k)] == space).all(axis=1).any()
                or (padded[trail[:, None] - k + np.arange(k)] == space).all(axis=1).any()):
            return True
    return False


def _digits8(words):
    """Values of 8 ASCII digits per uint64 word (first digit in the lowest byte), by SWAR.

    Args:
        words (np.ndarray): uint64 words.

    Returns:
        tuple: (int64 values, bool array: every byte is a digit).
    """
    high = words & _HIGH_NIBBLES
    ok = (high == _ZEROS) & (((words + _SIXES) & _HIGH_NIBBLES) == _ZEROS)
    v = words - _ZEROS
    v = (v * np.uint64(10) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v * np.uint64(100) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v * np.uint64(10000) + (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return v.astype(np.int64), ok


def _numbers(data, padded, starts, lengths, integer):
    """Parse tokens as Python's ``float`` (or ``int``) does.

    Digit strings of up to 16 digits are parsed with SWAR arithmetic (exact in int64, then
    rounded to float64 like ``float``); anything else goes through Python.

    Args:
        data (bytes): The chunk.
        padded (np.ndarray): The chunk, after ``_FRONT`` bytes.
        starts (np.ndarray): Token starts (offsets in ``padded``).
        lengths (np.ndarray): Token lengths.
        integer (bool): Parse as ``int`` instead of ``float``.

    Returns:
        tuple: (float64 values, index of the first unparsable token or None, its text).
    """
    view = np.ndarray((padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))
    ends = starts + lengths
    # Last 8 and previous 8 characters of each token, bytes before its start set to "0".
    low_pad = np.minimum(np.maximum(8 - lengths, 0), 8)
    high_pad = np.minimum(np.maximum(16 - lengths, 0), 8)
    low = (view[ends - 8] & _KEEP[low_pad]) | _FILL[low_pad]
    high = (view[ends - 16] & _KEEP[high_pad]) | _FILL[high_pad]
    low, low_ok = _digits8(low)
    high, high_ok = _digits8(high)
    values = (high * 100000000 + low).astype(np.float64)
    fast = low_ok & high_ok & (lengths >= 1) & (lengths <= 16)
    parse = int if integer else float
    for k in np.flatnonzero(~fast):
        text = data[starts[k] - _FRONT:starts[k] - _FRONT + lengths[k]].decode("utf-8")
        try:
            values[k] = parse(text)
        except (ValueError, OverflowError):
            return values, k, text
    return values, None, None
