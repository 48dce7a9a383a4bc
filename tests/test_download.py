"""`i2i-data`: download over a loopback HTTP server (never the internet), resume, checksums, safe
extraction (hostile archives), the pix2pix A|B split, and the messages for manual datasets."""

import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from i2i.data import download as data
from i2i.errors import DataError


class ArchiveServer(ThreadingHTTPServer):
    """Serves `files` (name -> bytes) with Range support; `cut_after` bytes of the next response
    are sent before the connection is dropped, once, to simulate an interrupted download."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class RangeHandler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        body = self.server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.server.ranges.append(requested)
        start = int(requested.removeprefix("bytes=").rstrip("-")) if requested else 0
        if start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.end_headers()
            return
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.server.cut_after is not None:
            payload, self.server.cut_after = payload[: self.server.cut_after], None
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    httpd = ArchiveServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def png(size: tuple[int, int], seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def make_tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


UNPAIRED = {
    f"toy/{split}/{i}.png": png((8, 8), i)
    for split in ("trainA", "trainB", "testA", "testB")
    for i in range(2)
}


def test_download_resumes_verifies_and_unpacks_the_cyclegan_layout(server, tmp_path):
    body = make_zip(UNPAIRED)
    server.files["toy.zip"] = body
    server.cut_after = len(body) // 3  # the first response breaks off; the retry asks for the rest
    archive = data.Archive("toy", server.url("toy.zip"), "unpaired")
    target = data.download(archive, tmp_path)
    assert server.ranges == [None, f"bytes={len(body) // 3}-"]
    assert sorted(p.name for p in target.iterdir() if p.is_dir()) == ["testA", "testB", "trainA", "trainB"]
    assert (target / "trainB" / "1.png").read_bytes() == UNPAIRED["toy/trainB/1.png"]
    recorded = json.loads((tmp_path / "checksums.json").read_text())
    assert recorded == {archive.url: data.hashlib.sha256(body).hexdigest()}  # trust on first use
    assert not (tmp_path / ".downloads" / "toy.zip").exists()  # the archive is removed once unpacked
    assert data.download(archive, tmp_path) == target and len(server.ranges) == 2  # already there


def test_a_download_that_does_not_match_the_recorded_digest_is_refused(server, tmp_path):
    server.files["toy.zip"] = make_zip(UNPAIRED)
    archive = data.Archive("toy", server.url("toy.zip"), "unpaired")
    (tmp_path / "checksums.json").write_text(json.dumps({archive.url: "0" * 64}))
    with pytest.raises(DataError, match="SHA-256 of the download is .* expected 0{64}"):
        data.download(archive, tmp_path)
    assert not (tmp_path / ".downloads" / "toy.zip").exists() and not (tmp_path / "toy").exists()
    with pytest.raises(DataError, match="expected f{64}"):
        data.download(replace(archive, sha256="f" * 64), tmp_path)


def test_a_download_over_the_size_limit_is_refused(server, tmp_path):
    server.files["toy.zip"] = make_zip(UNPAIRED)
    with pytest.raises(DataError, match="more than the limit of 100 bytes"):
        data.download(data.Archive("toy", server.url("toy.zip"), "unpaired", max_bytes=100), tmp_path)


def test_a_missing_file_on_the_server_is_one_line(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        data.download(data.Archive("toy", server.url("nothing.zip"), "unpaired"), tmp_path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (make_zip({"toy/trainA/0.png": b"x", "../evil.txt": b"owned"}), "'../evil.txt'"),
        (make_zip({"/tmp/evil.txt": b"owned"}), "'/tmp/evil.txt'"),
        (make_tar({"toy/trainA/0.png": b"x", "toy/../../evil.txt": b"owned"}), "'toy/../../evil.txt'"),
        (
            make_tar({"toy/trainA/0.png": b"x"}, links={"toy/trainA/link.png": "/etc/passwd"}),
            "a link or special",
        ),
    ],
    ids=["zip-dotdot", "zip-absolute", "tar-dotdot", "tar-symlink"],
)
def test_hostile_archives_are_refused_before_anything_is_written(server, tmp_path, body, message):
    name = "toy.zip" if body[:2] == b"PK" else "toy.tar.gz"
    server.files[name] = body
    with pytest.raises(DataError, match=message):
        data.download(data.Archive("toy", server.url(name), "unpaired"), tmp_path / "root")
    # nothing unpacked, in the target or outside it, and no digest recorded: only the archive itself
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [name]


def test_a_refused_archive_is_not_recorded_so_a_later_good_download_succeeds(server, tmp_path):
    archive = data.Archive("toy", server.url("toy.zip"), "unpaired")
    server.files["toy.zip"] = make_zip({"toy/trainA/0.png": b"x", "../evil.txt": b"owned"})
    with pytest.raises(DataError, match="points outside the target folder"):
        data.download(archive, tmp_path)
    assert not (tmp_path / "checksums.json").exists()
    good = make_zip(UNPAIRED)
    server.files["toy.zip"] = good
    target = data.download(archive, tmp_path)
    assert (target / "trainA" / "0.png").read_bytes() == UNPAIRED["toy/trainA/0.png"]
    recorded = json.loads((tmp_path / "checksums.json").read_text())
    assert recorded == {archive.url: data.hashlib.sha256(good).hexdigest()}


def test_a_zip_symlink_member_is_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("toy/trainA/link.png")
        info.external_attr = 0o120777 << 16  # S_IFLNK
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="a link or special file"):
        data.safe_extract(path, tmp_path / "out")


def test_an_archive_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("toy/trainA/zeros.png", bytes(2**20))
    with pytest.raises(DataError, match="archive bomb"):
        data.safe_extract(path, tmp_path / "out", max_bytes=2**19)


def test_pix2pix_pairs_are_split_into_the_unpaired_layout(server, tmp_path):
    left, right = np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 240, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate([left, right], axis=1)).save(buffer, format="PNG")
    server.files["shoes.tar.gz"] = make_tar(
        {f"shoes/{s}/1_AB.png": buffer.getvalue() for s in ("train", "val")}
    )
    target = data.download(data.Archive("shoes", server.url("shoes.tar.gz"), "aligned"), tmp_path)
    assert sorted(p.name for p in target.iterdir() if p.is_dir()) == ["testA", "testB", "trainA", "trainB"]
    a, b = (np.asarray(Image.open(target / f"test{h}" / "1_AB.jpg")) for h in "AB")
    assert a.shape == b.shape == (4, 4, 3)
    assert abs(int(a.mean()) - 10) <= 2 and abs(int(b.mean()) - 240) <= 2  # left half is A, right half B


def test_class_folders_name_their_held_out_split_test(server, tmp_path):
    server.files["afhq.zip"] = make_zip({f"afhq/{s}/cat/0.png": png((8, 8)) for s in ("train", "val")})
    target = data.download(data.Archive("afhq", server.url("afhq.zip"), "classes"), tmp_path)
    assert (target / "train" / "cat" / "0.png").is_file() and (target / "test" / "cat" / "0.png").is_file()


def test_the_known_archives_have_direct_urls_and_layouts():
    assert (
        data.ARCHIVES["horse2zebra"].url
        == "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    )
    assert data.ARCHIVES["edges2shoes"].layout == "aligned"
    assert {a.layout for a in data.ARCHIVES.values()} == {"unpaired", "aligned", "classes"}


@pytest.mark.parametrize("name", sorted(data.MANUAL))
def test_manual_datasets_say_where_to_put_the_files(capsys, tmp_path, name):
    with pytest.raises(SystemExit) as exit_info:
        data.main(["download", name, "--root", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(tmp_path / name) in err


def test_an_unknown_dataset_lists_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        data.main(["download", "imagenet"])
    assert "unknown dataset 'imagenet'; choose one of" in capsys.readouterr().err


def test_the_cli_downloads_into_root(server, tmp_path, monkeypatch, capsys):
    server.files["toy.zip"] = make_zip(UNPAIRED)
    monkeypatch.setitem(data.ARCHIVES, "toy", data.Archive("toy", server.url("toy.zip"), "unpaired"))
    data.main(["download", "toy", "--root", str(tmp_path)])
    assert capsys.readouterr().out.strip() == f"toy: {tmp_path / 'toy'}"
    assert (tmp_path / "toy" / "testA" / "0.png").is_file()
