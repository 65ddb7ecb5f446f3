# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Layer extraction: every malicious case is its own crafted layer; the host stays untouched."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='extraction keeps owners and makes devices: needs root')


class Tar:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode='w', format=tarfile.PAX_FORMAT)

    def add(self, name, typ=tarfile.REGTYPE, data=b'', mode=0o644, uid=0, gid=0, link='', pax=None, dev=(0, 0)):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.linkname = typ, mode, uid, gid, link
        info.devmajor, info.devminor = dev
        info.size = len(data) if typ == tarfile.REGTYPE else 0
        if pax:
            info.pax_headers = pax
        self.tf.addfile(info, io.BytesIO(data) if info.size else None)
        return self

    def bytes(self):
        self.tf.close()
        return self.buf.getvalue()


@pytest.fixture
def box(tmp_path):
    """dest (the layer root) beside a sentinel 'host' dir that must never change."""
    dest, host = tmp_path / 'dest', tmp_path / 'host'
    dest.mkdir()
    host.mkdir()
    (host / 'file').write_bytes(b'host data')
    return dest, host


def extract(dest, data, whiteouts='overlay'):
    stream = layer.open_layer(io.BytesIO(data))
    stats = layer.apply_layer(stream, str(dest), whiteouts)
    while stream.read(1 << 16):
        pass
    return stream, stats


def untouched(host):
    return sorted(os.listdir(host)) == ['file'] and (host / 'file').read_bytes() == b'host data'


@pytest.mark.parametrize('name, lands', [('../escape', 'escape'), ('/abs/file', 'abs/file'),
                                         ('a/../../../../escape2', 'escape2'), ('./x/./y', 'x/y')])
def test_names_are_clamped_inside(box, name, lands):
    dest, host = box
    extract(dest, Tar().add(name, data=b'x').bytes())
    assert (dest / lands).read_bytes() == b'x' and untouched(host)


def test_pax_path_override_is_clamped(box):
    dest, host = box
    extract(dest, Tar().add('innocent', data=b'p', pax={'path': '../../host/file'}).bytes())
    assert untouched(host) and (dest / 'host' / 'file').read_bytes() == b'p'


def test_write_through_planted_symlink_is_refused(box):
    dest, host = box
    data = Tar().add('evil', tarfile.SYMTYPE, link=str(host)).add('evil/pwned', data=b'bad').bytes()
    with pytest.raises(layer.LayerError, match="write through the symlink 'evil'"):
        extract(dest, data)
    assert untouched(host)


def test_apply_mode_resolves_symlinks_inside_the_root(box):
    dest, host = box
    data = Tar().add('evil', tarfile.SYMTYPE, link=str(host)).add('evil/pwned', data=b'ok').add('up', tarfile.SYMTYPE, link='../..') \
        .add('up/top', data=b't').bytes()
    extract(dest, data, 'apply')
    assert untouched(host)
    assert (dest / str(host).lstrip('/') / 'pwned').read_bytes() == b'ok'
    assert (dest / 'top').read_bytes() == b't'


def test_hardlink_through_symlink_is_refused(box):
    dest, host = box
    data = Tar().add('evil', tarfile.SYMTYPE, link=str(host)).add('stolen', tarfile.LNKTYPE, link='evil/file').bytes()
    with pytest.raises(layer.LayerError, match='symlink'):
        extract(dest, data)
    assert untouched(host) and not os.path.lexists(dest / 'stolen')


@pytest.mark.parametrize('target', ['../../etc/passwd', '/etc/passwd', '../host/file'])
def test_hardlink_out_of_the_root_is_refused(box, target):
    dest, host = box
    with pytest.raises(layer.LayerError, match='not a file inside the layer'):
        extract(dest, Tar().add('link', tarfile.LNKTYPE, link=target).bytes())
    assert untouched(host) and os.stat('/etc/passwd').st_nlink == 1


def test_symlink_loops_to_parent(box):
    dest, host = box
    data = Tar().add('a', tarfile.SYMTYPE, link='.').add('b', tarfile.SYMTYPE, link='..').add('b/x', data=b'x').bytes()
    with pytest.raises(layer.LayerError):
        extract(dest, data)
    assert untouched(host)


def test_existing_symlink_is_replaced_not_followed(box):
    dest, host = box
    os.symlink(str(host / 'file'), dest / 'link')
    extract(dest, Tar().add('link', data=b'new').bytes(), 'apply')
    assert not os.path.islink(dest / 'link') and (dest / 'link').read_bytes() == b'new' and untouched(host)


@pytest.mark.parametrize('name', ['.wh...', 'd/.wh..', '.wh.'])
def test_bad_whiteouts_are_refused(box, name):
    dest, host = box
    with pytest.raises(layer.LayerError, match='invalid whiteout'):
        extract(dest, Tar().add(name).bytes())
    assert untouched(host)


def test_whiteout_cannot_delete_outside(box):
    dest, host = box
    extract(dest, Tar().add('../host/.wh.file').bytes(), 'apply')
    assert untouched(host)


def test_rootfs_bits_are_kept(box):
    dest, _host = box
    data = (Tar().add('bin', tarfile.DIRTYPE, mode=0o755).add('bin/suid', data=b'#!', mode=0o4755, uid=1000, gid=1000)
            .add('dev', tarfile.DIRTYPE, mode=0o755).add('dev/null', tarfile.CHRTYPE, mode=0o666, dev=(1, 3))
            .add('dev/fifo', tarfile.FIFOTYPE, mode=0o600).add('a', data=b'same').add('b', tarfile.LNKTYPE, link='a')
            .add('abs', tarfile.SYMTYPE, link='/bin/suid').add('rel', tarfile.SYMTYPE, link='bin/suid')
            .add('x', data=b'x', pax={'SCHILY.xattr.user.test': 'v', 'SCHILY.xattr.trusted.overlay.opaque': 'y'})
            .add('ro', tarfile.DIRTYPE, mode=0o555).add('ro/inside', data=b'i').bytes())
    extract(dest, data)
    st = os.lstat(dest / 'bin' / 'suid')
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1000, 1000)
    null = os.lstat(dest / 'dev' / 'null')
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(dest / 'dev' / 'fifo').st_mode)
    assert os.path.samefile(dest / 'a', dest / 'b')
    assert os.readlink(dest / 'abs') == '/bin/suid' and os.readlink(dest / 'rel') == 'bin/suid'
    assert os.getxattr(dest / 'x', 'user.test') == b'v'
    assert 'trusted.overlay.opaque' not in os.listxattr(dest / 'x')
    assert stat.S_IMODE(os.stat(dest / 'ro').st_mode) == 0o555 and (dest / 'ro' / 'inside').read_bytes() == b'i'


def test_overlay_whiteouts(box):
    dest, _host = box
    extract(dest, Tar().add('d/.wh.gone').add('o/.wh..wh..opq').add('o/new', data=b'n').add('.wh..wh.plnk').bytes())
    wh = os.lstat(dest / 'd' / 'gone')
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(dest / 'o', 'trusted.overlay.opaque') == b'y'


def test_apply_mode_stack(box):
    dest, _host = box
    extract(dest, Tar().add('keep', data=b'k').add('gone', data=b'g').add('o/old', data=b'o').add('o/sub/deep', data=b'd').bytes(), 'apply')
    extract(dest, Tar().add('.wh.gone').add('o/new', data=b'n').add('o/.wh..wh..opq').bytes(), 'apply')
    assert sorted(os.listdir(dest)) == ['keep', 'o'] and sorted(os.listdir(dest / 'o')) == ['new']


def test_diff_id_for_plain_gzip_and_concatenated_gzip(tmp_path):
    raw = Tar().add('f', data=b'z' * 100000).bytes()
    want = 'sha256:' + hashlib.sha256(raw).hexdigest()
    half = len(raw) // 2
    for blob in (raw, gzip.compress(raw), gzip.compress(raw[:half]) + gzip.compress(raw[half:])):
        dest = tmp_path / hashlib.sha256(blob).hexdigest()[:8]
        dest.mkdir()
        stream, _stats = extract(dest, blob)
        assert stream.diff_id == want and stream.size == len(raw)
        assert (dest / 'f').read_bytes() == b'z' * 100000


def test_zstd_without_the_package_is_a_clear_error():
    pytest.importorskip('sys')
    try:
        import zstandard  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
        pytest.skip('zstandard is installed here')
    except ImportError:
        pass
    with pytest.raises(layer.LayerError, match='zstandard Python package is not installed'):
        layer.open_layer(io.BytesIO(b'\x28\xb5\x2f\xfd' + b'\0' * 10))


def test_garbage_is_a_clear_error(box):
    dest, _host = box
    with pytest.raises(layer.LayerError, match='not a valid tar stream'):
        extract(dest, b'this is not a tar file at all' * 20)


def test_copy_tree_keeps_everything(box, tmp_path):
    dest, _host = box
    extract(dest, Tar().add('s', data=b'#!', mode=0o4755, uid=7, gid=8).add('h', tarfile.LNKTYPE, link='s')
            .add('l', tarfile.SYMTYPE, link='/nowhere').add('c', tarfile.CHRTYPE, dev=(1, 5)).add('w/.wh.x').bytes())
    copy = tmp_path / 'copy'
    layer.copy_tree(str(dest), str(copy))
    st = os.lstat(copy / 's')
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (7, 8)
    assert os.path.samefile(copy / 's', copy / 'h') and os.readlink(copy / 'l') == '/nowhere'
    assert os.lstat(copy / 'c').st_rdev == os.makedev(1, 5) and stat.S_ISCHR(os.lstat(copy / 'w' / 'x').st_mode)
