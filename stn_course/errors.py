"""The course's known errors: a learner sees the message alone, not a traceback.

Raise :class:`CourseError` (or a subclass) for problems the learner can fix (missing or
corrupt data, an invalid setting, a checkpoint of another run). The CLI prints the
message and exits with status 1; ``--debug`` shows the traceback.
"""


class CourseError(Exception):
    """A problem with the learner's input, files or settings, explained in the message."""
