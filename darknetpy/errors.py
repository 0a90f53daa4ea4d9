"""The project's own error type: one line for the user, exit status 2 from the CLI."""


class DarknetError(Exception):
    """A problem the user can fix (a file, a cfg line, a weights file, an image).

    The message is a single line that names the file, line or layer involved.
    """

    exit_status = 2


class CfgError(DarknetError):
    """A .cfg file that Darknet would refuse, or that darknetpy cannot run."""


class WeightsError(DarknetError):
    """A .weights file that does not fit its cfg."""


class ImageError(DarknetError):
    """An image file that cannot be read or decoded."""


class DataError(DarknetError):
    """A .data, .names, tree or map file that cannot be used."""


class NotFound(FileNotFoundError):
    """Mixed into the kinds below, so that `except FileNotFoundError` catches a missing
    cfg, weights, image or names file as well as `except DarknetError` does. The message
    stays the project's one line; `filename` is the path."""

    def __init__(self, message: str, filename: str | None = None):
        super().__init__(message)
        self.filename = filename

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CfgNotFoundError(CfgError, NotFound):
    """A .cfg file that does not exist."""


class WeightsNotFoundError(WeightsError, NotFound):
    """A .weights file that does not exist."""


class ImageNotFoundError(ImageError, NotFound):
    """An image file that does not exist."""


class DataNotFoundError(DataError, NotFound):
    """A .data, .names, tree, map or list file that does not exist."""
