# Copyright (c) samref contributors. All rights reserved.
__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string such as ``'0.1.0'`` into ``(0, 1, 0)``.

    Args:
        version_str (str): The version string.

    Returns:
        tuple: The integer parts of the version, pre-release tags kept as
        strings.
    """
    return tuple(int(x) if x.isdigit() else x for x in version_str.split('.'))


version_info = parse_version_info(__version__)
