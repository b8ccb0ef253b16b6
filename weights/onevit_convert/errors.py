"""The one exception the converter raises for bad input."""


class ConvertError(Exception):
    """A problem with the user's checkpoint, config or arguments.

    The CLI prints it as one line (`convert.py: error: ...`) and exits 1, so the
    message must say what is wrong and name the tensor/key/file involved.
    Anything else that escapes is a bug in the converter and keeps its traceback.
    """
