"""Where an export may write: only inside the directory it was given, never over a file unasked.

File names come from tuneback (the format and split), never from the data, and
each is checked after resolving symbolic links, so nothing can be written
outside the chosen directory. An existing file is replaced only with ``force``;
an existing directory only when it is a saved dataset (``force`` never
deletes a directory of unrelated files).
"""

from __future__ import annotations

from pathlib import Path

from tuneback.errors import ConflictError, ValidationError

DATASET_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


def output_directory(directory: str | Path) -> Path:
    """The output directory, created if missing and resolved; refuses a file in its place."""
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise ValidationError(f"{path} is a file: --output takes a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def output_file(directory: Path, name: str, *, force: bool) -> Path:
    """``directory/name``, checked: inside the directory, and not overwritten without force."""
    if not name or name != Path(name).name or name in (".", ".."):
        raise ValidationError(f"{name!r} is not a plain file name")
    target = directory / name
    if target.is_symlink():
        raise ValidationError(
            f"{target} is a symbolic link: tuneback writes only inside {directory}; remove it first"
        )
    if target.resolve().parent != directory:
        raise ValidationError(f"{target} is outside {directory}")
    if target.exists():
        if not force:
            raise ConflictError(f"{target} exists: pass --force to overwrite it")
        if target.is_dir() and not any((target / marker).exists() for marker in DATASET_MARKERS):
            raise ConflictError(
                f"{target} is a directory that is not a saved dataset: not replacing it"
            )
    return target
