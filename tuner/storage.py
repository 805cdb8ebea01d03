"""Where a run's results live: a local folder, or a bucket that every node of a cluster reaches.

``storage`` is a folder path or a URI that ``pyarrow.fs`` understands (``s3://bucket/prefix``,
``gs://bucket/prefix``; S3-compatible servers through ``AWS_ENDPOINT_URL``). Ray Tune writes its
experiment state, trial files and checkpoints there itself. tuner's own files (config.yaml,
trials.csv, summary.json, report.html, wandb/, ...) are written into a local folder on the driver
and, for a bucket, copied beside Ray's files (``upload``) when the run starts, after each stage and
when it ends, however it ends. Readers and ``resume=`` fetch a local copy of those files
(``download``; ``resume=`` W&B's files too, to continue its runs), never the checkpoints. pyarrow is imported where it is used: its import takes a
tenth of a second that a command reading local folders need not pay.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tuner.errors import ConfigError, first_line

if TYPE_CHECKING:
    import pyarrow.fs as pafs

BUCKET_FIX = "create the bucket, or give storage=s3://<an existing bucket>/<prefix>"
CREDENTIALS_FIX = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an instance role grants the bucket"
# Files of a results folder that a reader never needs and that are large.
NOT_DOWNLOADED = ("report.html",)


def is_uri(storage: str | Path) -> bool:
    """A bucket (``s3://...``) rather than a folder path."""
    return "://" in str(storage)


def join(location: str, *names: str) -> str:
    """A URI with names appended: join("s3://b/runs", "x") == "s3://b/runs/x"."""
    return "/".join([location.rstrip("/"), *names])


def parent(location: str) -> str:
    """The URI of the folder holding ``location``."""
    return location.rstrip("/").rpartition("/")[0]


def name(location: str) -> str:
    """The last part of a URI or path: the run's folder name."""
    return location.rstrip("/").rpartition("/")[2]


def filesystem(uri: str, key: str = "storage") -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem of a URI and the path on it (for S3, pyarrow may ask the network for
    the bucket's region). An unknown scheme or no answer is one error line naming ``key``."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except ValueError as err:  # pyarrow.ArrowInvalid: a scheme it does not know
        raise ConfigError(
            key, f"'{uri}' is not a storage pyarrow knows ({first_line(err)})",
            "use s3://<bucket>/<prefix>, gs://<bucket>/<prefix> or a folder path",
        ) from None
    except OSError as err:
        raise ConfigError(key, f"cannot reach {uri} ({first_line(err)})", _reach_fix(uri)) from None


def check_bucket(uri: str, key: str = "storage") -> None:
    """Before anything is written: credentials are there (S3), the URI's scheme is known, the
    endpoint answers and the bucket exists. Each problem is one ConfigError naming ``key``."""
    import pyarrow.fs as pafs

    if uri.startswith("s3://") and "anonymous=true" not in uri and not _aws_credentials():
        raise ConfigError(key, f"no AWS credentials to reach {uri}", CREDENTIALS_FIX)
    fs, path = filesystem(uri, key)
    bucket = PurePosixPath(path).parts[0] if path else ""
    try:
        found = fs.get_file_info(bucket)
    except OSError as err:
        raise ConfigError(key, f"cannot reach {uri} ({first_line(err)})", _reach_fix(uri)) from None
    if found.type != pafs.FileType.Directory:
        raise ConfigError(key, f"the bucket '{bucket}' of {uri} does not exist", BUCKET_FIX)


def check_folder(folder: Path, key: str = "storage") -> None:
    """A folder the run can create and write in, tried before anything is written: a temporary
    folder made and removed in it, or in its nearest existing parent."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    fix = "give a folder you can write to"
    if not existing.is_dir():
        raise ConfigError(key, f"cannot create {folder}: {existing} is a file", fix)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tuner-check-", dir=existing))
    except OSError as err:
        raise ConfigError(key, f"cannot create {folder} ({err.strerror or err})", fix) from None


def _aws_credentials() -> bool:
    """Whether AWS's own credential chain (environment, profiles, SSO, instance role) finds any:
    without them pyarrow sends unsigned requests, which a real bucket refuses."""
    import boto3  # only an S3 storage needs it

    return boto3.session.Session().get_credentials() is not None


def _reach_fix(uri: str) -> str:
    if uri.startswith("s3://"):
        return "check AWS_ENDPOINT_URL (for an S3-compatible server), the network and the credentials"
    return "check the network and the credentials"


def staging_folder(run_name: str) -> Path:
    """Where the driver writes the files of a run whose results live in a bucket: a folder named
    after the run inside a temporary one of its own. Nothing is created until the run starts."""
    return Path(tempfile.gettempdir()) / f"tuner-{uuid.uuid4().hex[:12]}" / run_name


def upload(local: Path, uri: str) -> None:
    """Copy the local folder's files to the URI, replacing what is there under the same names."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    pafs.copy_files(str(local), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def download(uri: str, local: Path, subfolders: tuple[str, ...]) -> Path:
    """A local copy of a results folder's own files and those of its ``subfolders``: no trial
    folders, no checkpoints, no report. Returns ``local``."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    _download_files(fs, path, local)
    for folder in subfolders:
        if fs.get_file_info(f"{path}/{folder}").type == pafs.FileType.Directory:
            _download_files(fs, f"{path}/{folder}", local / folder)
    return local


def download_tree(uri: str, local: Path) -> None:
    """A local copy of a folder at the URI with everything under it (a run's W&B files)."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        pafs.copy_files(path, str(local), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())


def _download_files(fs: pafs.FileSystem, path: str, local: Path) -> None:
    import pyarrow.fs as pafs

    local.mkdir(parents=True, exist_ok=True)
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name not in NOT_DOWNLOADED:
            with fs.open_input_stream(info.path) as source:
                (local / info.base_name).write_bytes(source.read())


def list_folders(uri: str) -> list[str]:
    """The URIs of the folders directly under ``uri``."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(join(uri, e.base_name) for e in entries if e.type == pafs.FileType.Directory)


def exists(uri: str) -> bool:
    """Whether a file or folder is at the URI."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_text(uri: str) -> str:
    """A small text file at a URI (a config to retrain)."""
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as source:
        return source.read().decode()


def location_of(checkpoint: Any, remote: str | None) -> str:
    """Where a Ray checkpoint is, as a user gives it back: a URI in a bucket, else a path."""
    if remote is None:
        return checkpoint.path
    return f"{remote.partition('://')[0]}://{checkpoint.path}"
