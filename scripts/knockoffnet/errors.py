"""One exception type for every user-facing input problem.

Entry scripts catch :class:`InputError`, print its message (which names the file,
column or key and the fix) and exit non-zero, so users never see a traceback for
a data problem.
"""


class InputError(ValueError):
    """Bad user input: the message must name the file/column/key and say what to do."""
