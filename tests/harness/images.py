# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline test images: real OCI/Docker images built from Debian's static busybox, no network.

Everything is deterministic (fixed mtimes, owners, order; gzip with mtime 0), so the same
busybox binary always gives the same digests and a cache can be trusted. ``FixtureImages``
builds the whole set once into a cache dir; ``push`` puts a layout into a test registry with
skopeo, whose state (auth file, registries.conf, blob-info cache, temp files) stays in a temp dir.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile

BUSYBOX = '/bin/busybox'
SKOPEO = '/usr/bin/skopeo'
MTIME = 1700000000  # fixed timestamp for every tar entry: same input, same digest
CREATED = '2023-11-14T22:13:20Z'
HELLO = b'hello from nsbox\n'
PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

OCI_LAYOUT = 'application/vnd.oci.image.layout.v1'  # not a media type: the oci-layout file's meaning
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
REF_NAME = 'org.opencontainers.image.ref.name'


def _json(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':')).encode()


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class TarWriter:
    """Builds a tar in memory, entry by entry, in the order given, with fixed metadata."""

    def __init__(self):
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode='w', format=tarfile.PAX_FORMAT)

    def _add(self, name, typ, mode, uid=0, gid=0, data=b'', linkname='', pax=None):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime, info.linkname = typ, mode, uid, gid, MTIME, linkname
        info.uname = info.gname = ''
        if pax:
            info.pax_headers = dict(pax)
        info.size = len(data) if typ == tarfile.REGTYPE else 0
        self._tar.addfile(info, io.BytesIO(data) if info.size else None)
        return self

    def dir(self, name, mode=0o755, uid=0, gid=0):
        return self._add(name.rstrip('/') + '/', tarfile.DIRTYPE, mode, uid, gid)

    def file(self, name, data, mode=0o644, uid=0, gid=0, pax=None):
        """A regular file; ``pax`` adds PAX headers (e.g. a 'path' that overrides the name)."""
        return self._add(name, tarfile.REGTYPE, mode, uid, gid, data, pax=pax)

    def symlink(self, name, target):
        return self._add(name, tarfile.SYMTYPE, 0o777, linkname=target)

    def hardlink(self, name, target, mode=0o644, uid=0, gid=0):
        """A hard link to an earlier entry of this same layer (the only kind a layer can hold)."""
        return self._add(name, tarfile.LNKTYPE, mode, uid, gid, linkname=target)

    def whiteout(self, name):
        """Delete ``name`` from the layers below (OCI/AUFS ``.wh.`` file)."""
        head, tail = os.path.split(name)
        return self.file(os.path.join(head, '.wh.' + tail), b'')

    def opaque(self, dirname):
        """Hide everything the layers below have in ``dirname``: only this layer's entries remain."""
        return self.file(dirname.rstrip('/') + '/.wh..wh..opq', b'')

    def getvalue(self):
        self._tar.close()
        return self._buf.getvalue()


class Layer:
    """A layer's uncompressed tar and the blob that is stored (gzip or plain)."""

    def __init__(self, tar_bytes, compress=True):
        self.tar = tar_bytes
        self.diff_id = sha256(tar_bytes)
        self.blob = gzip.compress(tar_bytes, compresslevel=6, mtime=0) if compress else tar_bytes
        self.media_type = OCI_LAYER_GZIP if compress else OCI_LAYER_TAR
        self.digest = sha256(self.blob)

    def descriptor(self):
        return {'mediaType': self.media_type, 'digest': self.digest, 'size': len(self.blob)}

    def uncompressed(self):
        return self if self.media_type == OCI_LAYER_TAR else Layer(self.tar, compress=False)


class Image:
    """One platform's image: layers plus the config fields a runtime reads."""

    def __init__(self, layers, architecture='amd64', os_name='linux', variant=None, cmd=('/bin/sh',), env=(PATH_ENV,),
                 workdir='/', labels=None):
        self.layers = list(layers)
        self.architecture, self.os, self.variant = architecture, os_name, variant
        self.cmd, self.env, self.workdir, self.labels = list(cmd), list(env), workdir, dict(labels or {})

    def config_bytes(self):
        config = {'created': CREATED, 'architecture': self.architecture, 'os': self.os,
                  'config': {'Cmd': self.cmd, 'Env': self.env, 'WorkingDir': self.workdir, 'Labels': self.labels},
                  'rootfs': {'type': 'layers', 'diff_ids': [layer.diff_id for layer in self.layers]},
                  'history': [{'created': CREATED, 'created_by': 'nsbox test fixture, layer %d' % i} for i in range(len(self.layers))]}
        if self.variant:
            config['variant'] = self.variant
        return _json(config)

    def config_descriptor(self):
        data = self.config_bytes()
        return {'mediaType': OCI_CONFIG, 'digest': sha256(data), 'size': len(data)}

    def manifest_bytes(self):
        return _json({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': self.config_descriptor(),
                      'layers': [layer.descriptor() for layer in self.layers]})

    def platform(self):
        platform = {'architecture': self.architecture, 'os': self.os}
        if self.variant:
            platform['variant'] = self.variant
        return platform

    def uncompressed(self):
        """The same image (same config and diff_ids) with plain tar layers, as ``docker save`` writes them."""
        copy = Image([], self.architecture, self.os, self.variant, self.cmd, self.env, self.workdir, self.labels)
        copy.layers = [layer.uncompressed() for layer in self.layers]
        return copy

    def blobs(self):
        """Every blob the image needs: layers, config, manifest."""
        return [layer.blob for layer in self.layers] + [self.config_bytes(), self.manifest_bytes()]


# -- the images' contents -------------------------------------------------------------
def busybox_rootfs_bytes(busybox=BUSYBOX):
    """The busybox rootfs tar: /bin/busybox, one absolute symlink per applet, minimal /etc, /tmp, /root, /var/www."""
    applets = subprocess.run([busybox, '--list-full'], check=True, capture_output=True, text=True).stdout.split()
    links = sorted({a for a in applets if '/' in a} - {'bin/busybox'} | {'bin/sh'})
    with open(busybox, 'rb') as f:
        binary = f.read()
    files = {'bin/busybox': (binary, 0o755),
             'etc/passwd': (b'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 0o644),
             'etc/group': (b'root:x:0:\nnogroup:x:65534:\n', 0o644),
             'var/www/index.html': (HELLO, 0o644)}
    dir_modes = {'tmp': 0o1777, 'root': 0o700}
    dirs = {'dev', 'proc', 'sys', 'root', 'tmp', 'etc', 'var/www'}
    for path in list(files) + links + list(dirs):
        parts = path.split('/')
        dirs.update('/'.join(parts[:i]) for i in range(1, len(parts)))
    out = TarWriter()
    for path in sorted(dirs | set(files) | set(links)):  # sorted: a parent always precedes its children
        if path in files:
            out.file(path, files[path][0], files[path][1])
        elif path in dirs:
            out.dir(path, dir_modes.get(path, 0o755))
        else:
            out.symlink(path, '/bin/busybox')
    return out.getvalue()


def build_busybox_rootfs(dest_tar, busybox=BUSYBOX):
    """Write the busybox rootfs tar to dest_tar; returns its sha256 (the layer's diff_id)."""
    data = busybox_rootfs_bytes(busybox)
    with open(dest_tar, 'wb') as f:
        f.write(data)
    return sha256(data)


def build_multilayer_layers(busybox_layer=None):
    """Four layers exercising what extraction must get right; the result is MULTILAYER_EXPECTED.

    1 (gzip) the busybox rootfs (so the image runs); 2 (plain tar) files, hard links, relative,
    absolute, directory and dangling symlinks, a setuid file, non-root owners; 3 (gzip) a file
    whiteout, an opaque directory, setgid and sticky directories; 4 (plain tar) a directory
    whiteout, a whiteout of one name of a hard-linked pair, a replaced file, and a hard-linked
    pair owned by uid 1000.
    """
    base = busybox_layer or Layer(busybox_rootfs_bytes())
    l2 = (TarWriter().dir('data')
          .file('data/keep.txt', b'keep\n').file('data/remove-me.txt', b'remove me\n')
          .dir('data/olddir').file('data/olddir/a.txt', b'a\n').dir('data/olddir/sub').file('data/olddir/sub/b.txt', b'b\n')
          .file('data/hardlink-target.txt', b'linked\n').hardlink('data/hardlink.txt', 'data/hardlink-target.txt')
          .symlink('data/rel-link', 'keep.txt').symlink('data/abs-link', '/data/keep.txt')
          .symlink('data/dir-link', 'olddir').symlink('data/dangling-link', '/nonexistent/target')
          .file('data/owned', b'owned by 1000\n', 0o640, 1000, 1000)
          .dir('data/nobody', 0o700, 65534, 65534).file('data/nobody/file', b'nobody\n', 0o600, 65534, 65534)
          .dir('usr/local').dir('usr/local/bin').file('usr/local/bin/suid', b'#!/bin/sh\nid\n', 0o4755))
    l3 = (TarWriter().dir('data').whiteout('data/remove-me.txt')
          .dir('data/olddir').opaque('data/olddir').file('data/olddir/new.txt', b'new\n')
          .dir('data/shared', 0o2775, 0, 1000).dir('data/sticky', 0o1777))
    l4 = (TarWriter().dir('data').whiteout('data/nobody').whiteout('data/hardlink-target.txt')
          .file('data/keep.txt', b'keep v2\n')
          .dir('data/layer4', 0o750, 1000, 1000).file('data/layer4/hl-a', b'pair\n', 0o600, 1000, 1000)
          .hardlink('data/layer4/hl-b', 'data/layer4/hl-a', 0o600, 1000, 1000))
    return [base, Layer(l2.getvalue(), compress=False), Layer(l3.getvalue()), Layer(l4.getvalue(), compress=False)]


# What the multi-layer image's rootfs must look like once every layer is applied.
MULTILAYER_EXPECTED = {
    'absent': ['data/remove-me.txt', 'data/olddir/a.txt', 'data/olddir/sub', 'data/nobody', 'data/hardlink-target.txt'],
    'files': {'data/keep.txt': b'keep v2\n', 'data/hardlink.txt': b'linked\n', 'data/olddir/new.txt': b'new\n',
              'data/owned': b'owned by 1000\n', 'data/layer4/hl-a': b'pair\n', 'var/www/index.html': HELLO},
    'symlinks': {'data/rel-link': 'keep.txt', 'data/abs-link': '/data/keep.txt', 'data/dir-link': 'olddir',
                 'data/dangling-link': '/nonexistent/target', 'bin/sh': '/bin/busybox'},
    'modes': {'usr/local/bin/suid': 0o4755, 'data/shared': 0o2775, 'data/sticky': 0o1777, 'data/owned': 0o640, 'tmp': 0o1777},
    'owners': {'data/owned': (1000, 1000), 'data/layer4': (1000, 1000), 'data/layer4/hl-b': (1000, 1000), 'data/shared': (0, 1000)},
    'hardlinks': [('data/layer4/hl-a', 'data/layer4/hl-b')],
}


def check_multilayer_rootfs(root):
    """Differences between an unpacked multi-layer rootfs and MULTILAYER_EXPECTED (empty when right)."""
    exp, problems = MULTILAYER_EXPECTED, []

    def p(rel):
        return os.path.join(root, rel)
    problems += ['%s should be deleted' % rel for rel in exp['absent'] if os.path.lexists(p(rel))]
    for rel, data in exp['files'].items():
        if not os.path.isfile(p(rel)) or os.path.islink(p(rel)):
            problems.append('%s is not a regular file' % rel)
            continue
        with open(p(rel), 'rb') as f:
            if f.read() != data:
                problems.append('%s has the wrong content' % rel)
    problems += ['%s should link to %s' % (rel, t) for rel, t in exp['symlinks'].items()
                 if not os.path.islink(p(rel)) or os.readlink(p(rel)) != t]
    for rel, mode in exp['modes'].items():
        if os.path.lexists(p(rel)) and (os.lstat(p(rel)).st_mode & 0o7777) != mode:
            problems.append('%s has mode %o, not %o' % (rel, os.lstat(p(rel)).st_mode & 0o7777, mode))
    for rel, owner in exp['owners'].items():
        if os.path.lexists(p(rel)) and (os.lstat(p(rel)).st_uid, os.lstat(p(rel)).st_gid) != owner:
            problems.append('%s is not owned by %d:%d' % ((rel,) + owner))
    problems += ['%s and %s are not one file' % pair for pair in exp['hardlinks']
                 if not all(os.path.exists(p(x)) for x in pair) or not os.path.samefile(p(pair[0]), p(pair[1]))]
    for dirpath, dirnames, filenames in os.walk(root):
        problems += ['whiteout left: %s' % os.path.join(dirpath, n) for n in dirnames + filenames if n.startswith('.wh.')]
    return problems


# -- writers --------------------------------------------------------------------------
def _put_blob(blobdir, data):
    digest = sha256(data)
    path = os.path.join(blobdir, digest.split(':', 1)[1])
    if not os.path.exists(path):
        with open(path + '.tmp', 'wb') as f:
            f.write(data)
        os.rename(path + '.tmp', path)
    return {'digest': digest, 'size': len(data)}


def _index_bytes(images):
    manifests = []
    for image in images:
        data = image.manifest_bytes()
        manifests.append({'mediaType': OCI_MANIFEST, 'digest': sha256(data), 'size': len(data), 'platform': image.platform()})
    return _json({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': manifests})


def write_oci_layout(dest, images, extra_annotations=None):
    """Write an OCI image layout. ``images`` maps a ref name to an Image, or to a list of Images (one per
    platform) which becomes an image index. Returns {ref: descriptor} as written to index.json."""
    blobdir = os.path.join(dest, 'blobs', 'sha256')
    os.makedirs(blobdir, exist_ok=True)
    refs = {}
    for ref in sorted(images):
        entry = images[ref]
        for image in entry if isinstance(entry, (list, tuple)) else [entry]:
            for data in image.blobs():
                _put_blob(blobdir, data)
        if isinstance(entry, (list, tuple)):
            desc = dict(_put_blob(blobdir, _index_bytes(entry)), mediaType=OCI_INDEX)
        else:
            desc = dict(_put_blob(blobdir, entry.manifest_bytes()), mediaType=OCI_MANIFEST, platform=entry.platform())
        desc['annotations'] = dict((extra_annotations or {}).get(ref, {}), **{REF_NAME: ref})
        refs[ref] = desc
    with open(os.path.join(dest, 'oci-layout'), 'wb') as f:
        f.write(_json({'imageLayoutVersion': '1.0.0'}))
    with open(os.path.join(dest, 'index.json'), 'wb') as f:
        f.write(_json({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [refs[r] for r in sorted(refs)]}))
    return refs


def _tar_tree(src, dest_path):
    """Tar a directory's contents (sorted, fixed metadata) into dest_path."""
    out = TarWriter()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = os.path.relpath(dirpath, src)
        if rel != '.':
            out.dir(rel)
        for name in sorted(filenames):
            with open(os.path.join(dirpath, name), 'rb') as f:
                out.file(os.path.normpath(os.path.join(rel, name)), f.read())
    with open(dest_path, 'wb') as f:
        f.write(out.getvalue())


def write_oci_archive(path, images):
    """An oci-archive: a tar of an OCI layout (``images`` as for write_oci_layout). Returns {ref: descriptor}."""
    with tempfile.TemporaryDirectory(prefix='nsbox-oci-archive-') as tmp:
        refs = write_oci_layout(tmp, images)
        _tar_tree(tmp, path)
    return refs


def write_docker_archive(path, image, repo_tag='nsbox/busybox:latest', oci=False):
    """A ``docker save`` archive of one image, layers uncompressed as Docker writes them.

    Classic (Docker < 25): ``<config-hex>.json``, ``<layer-id>/{VERSION,json,layer.tar}``,
    ``manifest.json``, ``repositories``. ``oci=True`` (Engine 25+): an OCI layout
    (``oci-layout``, ``index.json``, ``blobs/sha256/``) plus ``manifest.json``/``repositories``
    whose paths point into ``blobs/sha256/``. Returns the config digest (Docker's image ID).
    """
    image = image.uncompressed()
    config = image.config_bytes()
    repo, tag = repo_tag.rsplit(':', 1)
    out = TarWriter()
    if oci:
        manifest = image.manifest_bytes()
        blobs = sorted({sha256(d): d for d in [layer.tar for layer in image.layers] + [config, manifest]}.items())
        out.dir('blobs').dir('blobs/sha256')
        for digest, data in blobs:
            out.file('blobs/sha256/' + digest[7:], data)
        out.file('oci-layout', _json({'imageLayoutVersion': '1.0.0'}))
        first = repo.split('/')[0]
        has_domain = '/' in repo and ('.' in first or ':' in first or first == 'localhost')
        name = repo_tag if has_domain else 'docker.io/' + repo_tag  # as Docker names it
        out.file('index.json', _json({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
            {'mediaType': OCI_MANIFEST, 'digest': sha256(manifest), 'size': len(manifest),
             'annotations': {'io.containerd.image.name': name, REF_NAME: tag}}]}))
        config_path, layer_paths = 'blobs/sha256/' + sha256(config)[7:], ['blobs/sha256/' + layer.diff_id[7:] for layer in image.layers]
        top = sha256(config)[7:]
    else:
        config_path, layer_paths, parent = sha256(config)[7:] + '.json', [], ''
        out.file(config_path, config)
        for layer in image.layers:
            layer_id = hashlib.sha256(('%s %s' % (parent, layer.diff_id)).encode()).hexdigest()  # any stable v1 ID will do
            v1 = {'id': layer_id, 'created': CREATED}
            if parent:
                v1['parent'] = parent
            out.dir(layer_id).file(layer_id + '/VERSION', b'1.0').file(layer_id + '/json', _json(v1)).file(layer_id + '/layer.tar', layer.tar)
            layer_paths.append(layer_id + '/layer.tar')
            parent = layer_id
        top = parent
    out.file('manifest.json', _json([{'Config': config_path, 'RepoTags': [repo_tag], 'Layers': layer_paths}]))
    out.file('repositories', _json({repo: {tag: top}}))
    with open(path, 'wb') as f:
        f.write(out.getvalue())
    return sha256(config)


# -- skopeo ---------------------------------------------------------------------------
TRANSPORTS = ('oci:', 'oci-archive:', 'docker-archive:', 'docker://', 'dir:')


def skopeo(*args, timeout=120):
    """Run skopeo with all its state in a temp dir; returns the CompletedProcess, raises RuntimeError with stderr on failure.

    Root's blob-info cache would go to /var/lib/containers/cache; containers/image puts it under
    XDG_DATA_HOME instead when ``_CONTAINERS_ROOTLESS_UID`` names a non-root user, so that and
    every other config path (auth file, registries.conf, policy, registries.d, tmp) is redirected.
    """
    with tempfile.TemporaryDirectory(prefix='nsbox-skopeo-') as state:
        for sub in ('data', 'config', 'run', 'tmp', 'docker', 'registries.d'):
            os.makedirs(os.path.join(state, sub), mode=0o700)
        with open(os.path.join(state, 'policy.json'), 'wb') as f:
            f.write(_json({'default': [{'type': 'insecureAcceptAnything'}]}))
        with open(os.path.join(state, 'registries.conf'), 'w') as f:
            f.write('unqualified-search-registries = []\n')
        env = dict(os.environ, _CONTAINERS_ROOTLESS_UID='65534', XDG_DATA_HOME=state + '/data', XDG_CONFIG_HOME=state + '/config',
                   XDG_RUNTIME_DIR=state + '/run', TMPDIR=state + '/tmp', DOCKER_CONFIG=state + '/docker',
                   REGISTRY_AUTH_FILE=state + '/run/auth.json', CONTAINERS_REGISTRIES_CONF=state + '/registries.conf')
        cmd = [SKOPEO, '--policy', state + '/policy.json', '--registries.d', state + '/registries.d', '--tmpdir', state + '/tmp'] + list(args)
        res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError('%s failed with %d:\n%s' % (' '.join(args), res.returncode, res.stderr[-4000:]))
    return res


def push(registry, source, repo, tag, creds=None):
    """Copy ``source`` (an OCI layout 'DIR:REF', or any skopeo reference) to ``registry`` as REPO:TAG.

    Every platform of an index goes up (``--multi-arch all``) and digests are kept as they are
    (``--preserve-digests``), so the registry serves the manifest/index digest of the source.
    ``creds`` ('user:password') defaults to the registry's own; '' pushes anonymously. Returns the pushed digest.
    """
    src = source if source.startswith(TRANSPORTS) else 'oci:' + source
    creds = creds if creds is not None else getattr(registry, 'creds', None)
    with tempfile.TemporaryDirectory(prefix='nsbox-push-') as tmp:
        digestfile = os.path.join(tmp, 'digest')
        args = ['copy', '--multi-arch', 'all', '--preserve-digests', '--dest-tls-verify=false', '--digestfile', digestfile]
        args += ['--dest-creds', creds] if creds else []
        args += ['--dest-cert-dir', registry.cert_dir] if getattr(registry, 'cert_dir', None) else []
        skopeo(*(args + [src, 'docker://%s/%s:%s' % (registry.host, repo, tag)]))
        with open(digestfile) as f:
            return f.read().strip()


# -- the cached set -------------------------------------------------------------------
class FixtureImages:
    """Every fixture image, built once into ``cache_dir`` and reused while the inputs are unchanged.

    Paths: busybox_tar (rootfs tar), oci_dir (layout with refs ``busybox`` = index amd64+arm64,
    ``busybox-amd64``, ``busybox-arm64``, ``multilayer``), docker_archive, docker_archive_oci,
    multilayer_docker_archive, oci_archive (ref ``busybox``, the index). ``digests`` maps each
    layout ref to its manifest/index digest; ``busybox_diff_id`` is the rootfs layer's diff_id.
    """

    FORMAT = 1  # bump when the images' content changes in a way the key below cannot see

    def __init__(self, cache_dir):
        self.cache_dir = os.path.abspath(cache_dir)
        names = {'busybox_tar': 'busybox-rootfs.tar', 'oci_dir': 'oci', 'docker_archive': 'busybox-docker.tar',
                 'docker_archive_oci': 'busybox-docker-oci.tar', 'multilayer_docker_archive': 'multilayer-docker.tar',
                 'oci_archive': 'busybox-oci.tar'}
        for attr, name in names.items():
            setattr(self, attr, os.path.join(self.cache_dir, name))
        self.digests = {}
        self.busybox_diff_id = None

    def ref(self, name):
        """A skopeo/umoci source for a layout ref, e.g. 'oci:/cache/oci:busybox'."""
        return 'oci:%s:%s' % (self.oci_dir, name)

    def _key(self):
        digest = hashlib.sha256(str(self.FORMAT).encode())
        for path in (BUSYBOX, __file__):
            with open(path, 'rb') as f:
                digest.update(f.read())
        return digest.hexdigest()

    def build(self):
        """Build (or reuse) everything; safe when several processes share the cache dir (flock)."""
        os.makedirs(self.cache_dir, exist_ok=True)
        stamp, key = os.path.join(self.cache_dir, 'fixtures.json'), self._key()
        with open(os.path.join(self.cache_dir, '.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(stamp) as f:
                    done = json.load(f)
                if done.get('key') == key:
                    self.digests, self.busybox_diff_id = done['digests'], done['busybox_diff_id']
                    return self
            except (OSError, ValueError):
                pass
            self._build()
            with open(stamp + '.tmp', 'w') as f:
                json.dump({'key': key, 'digests': self.digests, 'busybox_diff_id': self.busybox_diff_id}, f)
            os.rename(stamp + '.tmp', stamp)
        return self

    def _build(self):
        shutil.rmtree(self.oci_dir, ignore_errors=True)
        self.busybox_diff_id = build_busybox_rootfs(self.busybox_tar)
        with open(self.busybox_tar, 'rb') as f:
            base = Layer(f.read())
        amd64 = Image([base], labels={'org.nsbox.fixture': 'busybox'})
        # The arm64 entry reuses the amd64 busybox layer: only its config says arm64. It is there to test
        # platform selection in an index, not to run (the binary inside is x86-64).
        arm64 = Image([base], architecture='arm64', variant='v8', labels={'org.nsbox.fixture': 'busybox'})
        multi = Image(build_multilayer_layers(base), cmd=['/bin/sh', '-c', 'cat /data/keep.txt'], workdir='/data',
                      env=[PATH_ENV, 'NSBOX_FIXTURE=multilayer'], labels={'org.nsbox.fixture': 'multilayer'})
        images = {'busybox': [amd64, arm64], 'busybox-amd64': amd64, 'busybox-arm64': arm64, 'multilayer': multi}
        refs = write_oci_layout(self.oci_dir, images)
        self.digests = {ref: desc['digest'] for ref, desc in refs.items()}
        write_oci_archive(self.oci_archive, {'busybox': images['busybox']})
        write_docker_archive(self.docker_archive, amd64, 'nsbox/busybox:latest')
        write_docker_archive(self.docker_archive_oci, amd64, 'nsbox/busybox:latest', oci=True)
        write_docker_archive(self.multilayer_docker_archive, multi, 'nsbox/multilayer:latest')


# -- the benchmark image --------------------------------------------------------------
BENCH_CACHE = '/var/tmp/nsbox-bench-image'
# (tree on this machine, bytes of file data taken from it): with the busybox rootfs, ~120 MB of gzip in 4 layers.
BENCH_TREES = (('/usr/lib/python3.11', 64 << 20), ('/usr/share', 112 << 20), ('/usr/lib/x86_64-linux-gnu', 160 << 20))


def _walk_sorted(path):
    """(path, lstat) of everything under ``path``, depth-first in name order; symlinks are not followed."""
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        st = os.lstat(full)
        yield full, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_sorted(full)


def tree_entries(top, budget):
    """Directories, symlinks and regular files under ``top``, in walk order, until the files reach ``budget`` bytes
    (a file's further hard links are free: they go in the layer as links)."""
    out, left, seen = [], budget, set()
    for path, st in _walk_sorted(top):
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            if st.st_size > left:
                break
            left -= st.st_size
            seen.add((st.st_dev, st.st_ino))
        elif not (stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        out.append((path, st))
    return out


def tree_layer_bytes(top, entries):
    """A layer tar of ``entries`` (from tree_entries) at their own paths, with the parents of ``top``; owner 0:0, fixed mtime."""
    out, first = TarWriter(), {}
    parts = top.strip('/').split('/')
    for i in range(1, len(parts) + 1):
        out.dir('/'.join(parts[:i]))
    for path, st in entries:
        name, mode = path.lstrip('/'), stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            out.dir(name, mode)
        elif stat.S_ISLNK(st.st_mode):
            out.symlink(name, os.readlink(path))
        elif (st.st_dev, st.st_ino) in first:
            out.hardlink(name, first[st.st_dev, st.st_ino], mode)
        else:
            first[st.st_dev, st.st_ino] = name
            with open(path, 'rb') as f:
                out.file(name, f.read(), mode)
    return out.getvalue()


def bench_image(cache_dir=BENCH_CACHE, trees=BENCH_TREES):
    """The benchmark image (busybox rootfs + one gzip layer per tree), built once into ``cache_dir``/oci as ref 'bench'.

    Returns {'source': 'DIR:bench' for push, 'digest', 'size' (compressed bytes), 'layers'}. Rebuilt when
    the chosen files (names, modes, sizes, mtimes) or the busybox binary change.
    """
    plan = [(top, tree_entries(top, budget)) for top, budget in trees]
    key = hashlib.sha256(b'bench-image 1')
    with open(BUSYBOX, 'rb') as f:
        key.update(f.read())
    for top, entries in plan:
        for path, st in entries:
            key.update(('%s %o %d %d\n' % (path, st.st_mode, st.st_size, st.st_mtime_ns)).encode('utf-8', 'surrogateescape'))
    layout, stamp = os.path.join(cache_dir, 'oci'), os.path.join(cache_dir, 'bench.json')
    os.makedirs(cache_dir, exist_ok=True)
    with open(os.path.join(cache_dir, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(stamp) as f:
                done = json.load(f)
            if done.get('key') == key.hexdigest():
                return done['image']
        except (OSError, ValueError):
            pass
        shutil.rmtree(layout, ignore_errors=True)
        layers = [Layer(busybox_rootfs_bytes())] + [Layer(tree_layer_bytes(top, entries)) for top, entries in plan]
        image = Image(layers, labels={'org.nsbox.fixture': 'bench'})
        desc = write_oci_layout(layout, {'bench': image})['bench']
        info = {'source': '%s:bench' % layout, 'digest': desc['digest'], 'size': sum(len(layer.blob) for layer in layers),
                'layers': [layer.digest for layer in layers]}
        with open(stamp + '.tmp', 'w') as f:
            json.dump({'key': key.hexdigest(), 'image': info}, f)
        os.rename(stamp + '.tmp', stamp)
    return info
