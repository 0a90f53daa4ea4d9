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
