"""`i2i-data`: fetch the public benchmark archives into the layouts the datamodules read.

    i2i-data list
    i2i-data download horse2zebra            # -> $I2I_DATA_DIR/horse2zebra/{trainA,trainB,testA,testB}
    i2i-data download edges2shoes --root /data
    i2i-data export shapes_color inputs/         # synthetic test images to try i2i-translate on

Downloads resume where they stopped (HTTP Range), are checked against a SHA-256 digest, and are
unpacked safely: archive members may not leave the target folder (absolute paths, `..`), links
and special files are refused, and the unpacked size and file count are capped (archive bombs).

Checksums: none of the official sources (the CycleGAN and pix2pix download scripts, StarGAN v2's
`download.sh` for AFHQ) publishes a digest, so `Archive.sha256` is None for them. The digest of
the first download that unpacked is then recorded in `<root>/checksums.json` (an archive refused
as hostile is never recorded), and every later download of that archive must match it (trust on
first use); `--sha256` pins one explicitly.

Sets that cannot be fetched automatically (`MANUAL`) get a message saying where to put the files.
"""

import hashlib
import json
import logging
import os
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from i2i.cli import ArgumentParser, reporting_errors
from i2i.data.folder import read_image
from i2i.errors import DataError

log = logging.getLogger("i2i")

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"
CHUNK = 1 << 20
MARKER = ".i2i-dataset.json"


@dataclass(frozen=True)
class Archive:
    """One downloadable dataset.

    layout: "unpaired" (already root/{trainA,trainB,testA,testB}), "aligned" (pix2pix A|B images
    in train/ and val/, split into the unpaired layout) or "classes" (root/{train,test}/<class>/).
    sha256: the published digest, or None where the source publishes none (see the module doc).
    """

    name: str
    url: str
    layout: str
    sha256: str | None = None
    max_bytes: int = 20 * 2**30  # refuse downloads larger than this


CYCLEGAN_SETS = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "facades",
    "iphone2dslr_flower",
    "ae_photos",
)
ARCHIVES: dict[str, Archive] = {
    **{name: Archive(name, CYCLEGAN_URL.format(name), "unpaired") for name in CYCLEGAN_SETS},
    **{
        name: Archive(name, PIX2PIX_URL.format(name), "aligned") for name in ("edges2shoes", "edges2handbags")
    },
    "afhq": Archive("afhq", "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1", "classes"),
}
MANUAL: dict[str, str] = {
    "selfie2anime": (
        "selfie2anime is shared by the U-GAT-IT authors on Google Drive only (no direct URL): download "
        "selfie2anime.zip from the link in the taki0112/UGATIT README and unpack it so that "
        "{root}/selfie2anime/{{trainA,trainB,testA,testB}} exist"
    ),
    "animal_faces": (
        "Animal Faces (FUNIT) is cut out of the ImageNet training set, which needs an ImageNet licence: "
        "download ILSVRC2012_img_train.tar from image-net.org, build the crops with the FUNIT authors' "
        "tools/extract_animalfaces.py, and place them as {root}/animal_faces/{{train,test}}/<class>/*.jpg"
    ),
    "init_sunny2night": (
        "INIT (Shen et al., CVPR 2019; DUNIT's sunny -> night) is shared by its authors from the INIT "
        "project page on request (no direct URL): download it, put the sunny images as "
        "{root}/init_sunny2night/{{trainA,testA}}/* and the night images as {{trainB,testB}}/*, and each "
        "folder's object boxes as a COCO-style file beside it, {root}/init_sunny2night/"
        "{{trainA,trainB,testA,testB}}.json ('images' with file_name, id, width, height; 'annotations' "
        "with image_id and bbox [x, y, width, height] in pixels), which data.domains.boxes=true reads"
    ),
    "celeba": (
        "CelebA requires accepting its licence on the CelebA website (Google Drive / Baidu links): download "
        "img_align_celeba.zip and list_attr_celeba.txt and place them as "
        "{root}/celeba/img_align_celeba/*.jpg and {root}/celeba/list_attr_celeba.txt"
    ),
}


# ---------------------------------------------------------------------------------------- download
def fetch(url: str, destination: Path, *, max_bytes: int, retries: int = 3) -> Path:
    """Download `url` to `destination`, resuming a partial `<destination>.part` with an HTTP Range
    request; returns `destination` once complete. Refuses bodies larger than `max_bytes`."""
    partial = destination.with_name(destination.name + ".part")
    destination.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, retries + 1):
        try:
            if _fetch_once(url, partial, max_bytes):
                os.replace(partial, destination)
                return destination
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code < 500:
                raise DataError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
            if attempt == retries:
                raise DataError(
                    f"cannot download {url}: {error} (run the command again to resume from "
                    f"{partial.stat().st_size if partial.exists() else 0} bytes)"
                ) from error
            log.warning("download interrupted (%s); resuming", error)
            time.sleep(attempt)
    raise DataError(
        f"cannot download {url}: the server kept closing the connection early; run the command again"
    )


def _fetch_once(url: str, partial: Path, max_bytes: int) -> bool:
    """One request appending to `partial`; True when the file is complete."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": "i2i-data"} | ({"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as error:
        # 416 with "bytes */<size>": nothing left to send; complete if we hold exactly that size
        if error.code == 416 and have and error.headers.get("Content-Range", "") == f"bytes */{have}":
            return True
        if error.code == 416:
            partial.unlink(missing_ok=True)
            raise ConnectionError(
                "the partial download does not fit the file on the server; starting again"
            ) from error
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        if total is not None and total > max_bytes:
            raise DataError(
                f"{url} is {total} bytes, more than the limit of {max_bytes} bytes for this archive"
            )
        with open(partial, "ab" if have else "wb") as out:
            received = have
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise DataError(f"{url} sent more than the limit of {max_bytes} bytes for this archive")
                out.write(chunk)
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
    return True


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def expected_checksum(archive: Archive, root: Path, sha256: str | None = None) -> str | None:
    """The digest the download must have: `sha256`, the published one, or the one recorded when the
    archive first unpacked (`<root>/checksums.json`); None before the first download that unpacked."""
    return sha256 or archive.sha256 or _checksum_book(root).get(archive.url)


def verify(path: Path, archive: Archive, root: Path, expected: str | None) -> str:
    """The archive's SHA-256, checked against `expected` when there is one (a mismatch deletes it)."""
    actual = sha256_of(path)
    if expected is not None and actual != expected.lower():
        path.unlink()
        raise DataError(
            f"{archive.name}: SHA-256 of the download is {actual}, expected {expected} (deleted the file; "
            f"run again, or remove the entry from {root / 'checksums.json'} if the source really changed)"
        )
    return actual


def record_checksum(archive: Archive, root: Path, digest: str) -> None:
    """Trust on first use: remember the digest of an archive that unpacked (never of one refused as
    hostile, which would turn every later good download into a mismatch)."""
    book = _checksum_book(root)
    book[archive.url] = digest
    (root / "checksums.json").write_text(json.dumps(book, indent=2, sort_keys=True) + "\n")
    log.info(
        "%s: no published checksum; recorded SHA-256 %s in %s", archive.name, digest, root / "checksums.json"
    )


def _checksum_book(root: Path) -> dict[str, str]:
    path = root / "checksums.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# ---------------------------------------------------------------------------------------- extract
def _safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path, or a DataError for names that would leave the target folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(
            f"{archive}: refusing archive member {name!r}, which points outside the target folder"
        )
    return path


def _members(archive: Path) -> Iterator[tuple[PurePosixPath, bool, int]]:
    """(relative path, is_directory, size) of every member; links and special files refused."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise DataError(
                        f"{archive}: refusing archive member {info.filename!r}, a link or special file"
                    )
                yield _safe_member_path(info.filename, archive), info.is_dir(), info.file_size
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tarred:
            for info in tarred:
                if not (info.isfile() or info.isdir()):
                    raise DataError(
                        f"{archive}: refusing archive member {info.name!r}, a link or special file"
                    )
                yield _safe_member_path(info.name, archive), info.isdir(), info.size
    else:
        raise DataError(f"{archive} is neither a zip nor a tar archive (delete it and download again)")


def safe_extract(
    archive: Path, target: Path, *, max_bytes: int | None = None, max_files: int = 2_000_000
) -> None:
    """Unpack `archive` (zip or tar) into `target` after checking every member: no path leaves
    `target`, no links or special files, at most `max_files` members and `max_bytes` unpacked
    (default: 4x the archive size plus 64 MiB; images barely compress, so more means a bomb)."""
    max_bytes = max_bytes if max_bytes is not None else 4 * archive.stat().st_size + 64 * 2**20
    total = count = 0
    for _, _, size in _members(archive):
        total, count = total + size, count + 1
        if total > max_bytes or count > max_files:
            raise DataError(
                f"{archive}: unpacks to more than {max_bytes} bytes or {max_files} files; "
                "refusing (archive bomb?)"
            )
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                path = root.joinpath(*_safe_member_path(info.filename, archive).parts)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
    else:
        with tarfile.open(archive) as tarred:
            tarred.extractall(root, filter="data")  # the members were checked above; "data" checks again


# ---------------------------------------------------------------------------------------- layouts
def _dataset_root(folder: Path, expected: tuple[str, ...]) -> Path:
    """The folder holding the split folders: `folder` itself or its single top-level subfolder."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if any((candidate / name).is_dir() for name in expected):
            return candidate
    raise DataError(f"the archive has none of the folders {', '.join(expected)}; is it the right dataset?")


def split_aligned(source: Path, target: Path) -> int:
    """pix2pix A|B images (A on the left half, B on the right) of source/{train,val} into
    target/{trainA,trainB,testA,testB}, val becoming test, as the MUNIT authors' edges2* scripts do;
    halves are saved as JPEG at quality 100 like theirs. Returns the number of pairs."""
    pairs = 0
    for split, out in (("train", "train"), ("val", "test")):
        files = sorted(p for p in (source / split).glob("*") if p.is_file())
        if not files:
            raise DataError(f"{source / split} has no images; is it a pix2pix A|B archive?")
        for half in "AB":
            (target / f"{out}{half}").mkdir(parents=True, exist_ok=True)
        for path in files:
            image = read_image(path)
            width, height = image.size
            a, b = image.crop((0, 0, width // 2, height)), image.crop((width // 2, 0, width, height))
            name = path.with_suffix(".jpg").name
            a.save(target / f"{out}A" / name, quality=100)
            b.save(target / f"{out}B" / name, quality=100)
            pairs += 1
    return pairs


def arrange(extracted: Path, archive: Archive, target: Path) -> None:
    """Move the unpacked dataset into `target` in the layout of `archive.layout`."""
    if archive.layout == "unpaired":
        root = _dataset_root(extracted, ("trainA", "trainB", "testA", "testB"))
        missing = [s for s in ("trainA", "trainB") if not (root / s).is_dir()]
        if missing:
            raise DataError(f"{archive.name}: the archive lacks {', '.join(missing)}")
        os.replace(root, target)
    elif archive.layout == "aligned":
        root = _dataset_root(extracted, ("train", "val"))
        staging = target.with_name(target.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        log.info("%s: %d A|B pairs split into halves", archive.name, split_aligned(root, staging))
        os.replace(staging, target)
    elif archive.layout == "classes":
        root = _dataset_root(extracted, ("train", "val", "test"))
        if (root / "val").is_dir() and not (root / "test").exists():
            os.replace(root / "val", root / "test")  # the class-folder layout names its held-out split test
        os.replace(root, target)
    else:
        raise DataError(f"{archive.name}: unknown layout {archive.layout!r}")


def download(archive: Archive, root: Path, *, sha256: str | None = None, keep_archive: bool = False) -> Path:
    """Fetch, verify, unpack and arrange `archive` under `root/<name>`; returns that folder. A
    folder already made by a previous download is left as it is."""
    root = Path(root).expanduser()
    target = root / archive.name
    if (target / MARKER).is_file():
        log.info("%s is already in %s", archive.name, target)
        return target
    if target.exists():
        raise DataError(f"{target} exists but was not made by i2i-data; move it away or use another --root")
    file_name = PurePosixPath(archive.url.split("?")[0]).name
    path = fetch(archive.url, root / ".downloads" / file_name, max_bytes=archive.max_bytes)
    expected = expected_checksum(archive, root, sha256)
    digest = verify(path, archive, root, expected)
    extracted = root / ".downloads" / f"{archive.name}.unpacked"
    shutil.rmtree(extracted, ignore_errors=True)
    try:
        safe_extract(path, extracted)
        arrange(extracted, archive, target)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
    if expected is None:
        record_checksum(archive, root, digest)
    (target / MARKER).write_text(json.dumps({"url": archive.url, "sha256": digest}, indent=2) + "\n")
    if not keep_archive:
        path.unlink()
    return target


# ---------------------------------------------------------------------------------------- CLI
def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="i2i-data", description="Download benchmark datasets.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the datasets this tool knows")
    get = commands.add_parser("download", help="download and unpack one dataset")
    get.add_argument("name")
    get.add_argument(
        "--root", default=os.environ.get("I2I_DATA_DIR", "data"), help="default: $I2I_DATA_DIR or ./data"
    )
    get.add_argument("--sha256", help="the expected SHA-256 of the archive")
    get.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive")
    put = commands.add_parser(
        "export", help="write a synthetic scenario's images as a CycleGAN-layout folder"
    )
    put.add_argument("scenario", help="a two-domain synthetic data config, e.g. shapes_color")
    put.add_argument("folder", type=Path, help="a new or empty folder (nothing is overwritten)")
    put.add_argument(
        "--num-test", type=int, default=100, help="images per domain in testA/testB (default 100)"
    )
    put.add_argument(
        "--num-train", type=int, default=0, help="also write trainA/trainB with this many (default 0)"
    )
    put.add_argument("--image-size", type=int, help="default: the scenario config's data.image_size")
    put.add_argument(
        "--seed", type=int, default=0, help="the i2i-train seed the images are drawn with (default 0)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `i2i-data`."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parser().parse_args(argv)
    with reporting_errors():
        if args.command == "list":
            for name, archive in sorted(ARCHIVES.items()):
                print(f"{name:24} {archive.layout:9} {archive.url}")
            for name in sorted(MANUAL):
                print(f"{name:24} {'manual':9} (see: i2i-data download {name})")
            return
        if args.command == "export":
            # imported here: rendering needs Hydra and Lightning, which would slow `list` and `download`
            from i2i.data.export import ExportRequest, export

            request = ExportRequest(
                args.scenario, args.folder, args.num_test, args.num_train, args.image_size, args.seed
            )
            for subfolder, count in export(request).items():
                print(f"{args.folder / subfolder}: {count} images")
            return
        root = Path(args.root)
        if args.name in MANUAL:
            raise DataError(MANUAL[args.name].format(root=root))
        if args.name not in ARCHIVES:
            known = ", ".join(sorted([*ARCHIVES, *MANUAL]))
            raise DataError(f"unknown dataset {args.name!r}; choose one of {known}")
        target = download(ARCHIVES[args.name], root, sha256=args.sha256, keep_archive=args.keep_archive)
        print(f"{args.name}: {target}", file=sys.stdout)


if __name__ == "__main__":
    main()
