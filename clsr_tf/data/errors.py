"""Errors raised by the raw data readers."""

import os


class DataFormatError(ValueError):
    """A malformed row in a raw data file (or a file that is malformed as a whole).

    The message names the file, the 1-based line number and the field, e.g.
    ``ratings.csv, line 17, field 'timestamp': not a number ('abc')``; a problem of the whole
    file (an empty file, a vocabulary that is not a dict) or of a whole line (an empty line)
    leaves out the line or the field.

    Attributes:
        path (str): The file, as given to the reader.
        line (int): 1-based line number in the file (the header, if any, is line 1), or None.
        field (str): Name of the offending field, or None.
        message (str): What is wrong with it.
    """

    def __init__(self, path, line, field, message):
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        self.message = message
        where = [self.path] + ([f"line {line}"] if line is not None else []) + (
            [f"field {field!r}"] if field is not None else [])
        super().__init__(f"{', '.join(where)}: {message}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.field, self.message)
