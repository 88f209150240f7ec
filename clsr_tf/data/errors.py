"""Errors raised by the raw data readers."""

import os


class DataFormatError(ValueError):
    """A malformed row in a raw data file.

    The message names the file, the 1-based line number and the field, e.g.
    ``ratings.csv, line 17, field 'timestamp': not a number ('abc')``.

    Attributes:
        path (str): The file, as given to the reader.
        line (int): 1-based line number in the file (the header, if any, is line 1).
        field (str): Name of the offending field.
        message (str): What is wrong with it.
    """

    def __init__(self, path, line, field, message):
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(f"{self.path}, line {line}, field {field!r}: {message}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.field, self.message)
