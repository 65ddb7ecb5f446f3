# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container module's ``pull`` option over SSH, against a real registry on loopback.

The host config names the registry insecure (plain HTTP) and gives the containers a cgroup
parent of their own; the cleanup is harness.containers': after
each test nothing of a container may be left (supervisor, mount), nor any orphan process, and
the data-root is emptied (each test starts with an empty image store).
"""
from __future__ import annotations

import secrets

import pytest

from harness import images
from harness.containers import LAYOUT, NOTHING, V1_ONLY, setup, teardown


pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

SLEEP = {'command': 'sleep 1000', 'stop_timeout': 0}


@pytest.fixture(scope='module')
def pull_host(testhost, ansible, registry):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {}, registries={'insecure': [registry.host]})
    teardown(testhost, parent)


@pytest.fixture
def box(pull_host, reaper):
    yield pull_host
    left = teardown(pull_host.host, pull_host.parent)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def _push(registry, fixtures, image, repo):
    """Push fixture ``image`` as REPO:latest; the reference to pull."""
    images.push(registry, fixtures.ref(image), 'nsbox/%s' % repo, 'latest')
    return '%s/nsbox/%s:latest' % (registry.host, repo)


def _requests(registry, repo):
    """GETs of REPO's manifests and blobs in the registry's access log."""
    with open(registry.log_path, 'rb') as f:
        lines = [line for line in f if b'"GET ' in line]
    return tuple(sum(1 for line in lines if ('/v2/nsbox/%s/%s/' % (repo, kind)).encode() in line) for kind in ('manifests', 'blobs'))


def _tagged(box, ref):
    """The manifest digest the store's tag names (image_info), or None."""
    found = box.ansible.module('nsbox.runtime.image_info', {'name': [ref]})['images']
    return found[0]['digest'] if found else None


def test_missing_pulls_and_starts_then_nothing(box, registry, fixtures):
    ref = _push(registry, fixtures, 'busybox-amd64', 'pull-missing')
    digest = fixtures.digests['busybox-amd64']
    check = box.run(check=True, diff=True, name='pm', image=ref, **SLEEP)
    assert check['_status'] == 'changed', check
    assert check['actions'] == ['would pull image %s: %s' % (ref, digest), 'created container pm from %s' % ref, 'started container pm']
    assert check['diff']['after']['image'] == {'name': ref, 'digest': digest}
    assert box.info('pm') is None and _tagged(box, ref) is None  # check mode: nothing pulled, nothing made
    assert _requests(registry, 'pull-missing')[1] == 0  # ... and no blob read

    res = box.run(name='pm', image=ref, **SLEEP)
    assert res['_status'] == 'changed', res
    assert res['actions'][0].startswith('pulled image %s: %s (fetched 1 and unpacked 1 of 1 layers' % (ref, digest)), res['actions']
    assert res['actions'][1:] == ['created container pm from %s' % ref, 'started container pm']
    assert res['container']['state']['running'] and res['container']['image']['digest'] == digest
    assert _tagged(box, ref) == digest  # tagged in the store as the image module tags it

    asked = _requests(registry, 'pull-missing')
    again = box.run(name='pm', image=ref, **SLEEP)
    assert again['_status'] == 'ok' and again['actions'] == [], again
    assert box.run(check=True, name='pm', image=ref, **SLEEP)['_status'] == 'ok'
    assert _requests(registry, 'pull-missing') == asked  # present: the registry is not asked
    assert box.run(name='pm', state='absent')['_status'] == 'changed'


def test_always_recreates_when_the_tag_moves(box, registry, fixtures):
    ref = _push(registry, fixtures, 'busybox-amd64', 'pull-always')
    old, new = fixtures.digests['busybox-amd64'], fixtures.digests['multilayer']
    first = box.run(name='pa', image=ref, pull='always', **SLEEP)
    assert first['_status'] == 'changed' and first['actions'][0].startswith('pulled image %s: %s' % (ref, old)), first
    cid = first['container']['id']

    asked = _requests(registry, 'pull-always')
    same = box.run(name='pa', image=ref, pull='always', **SLEEP)
    assert same['_status'] == 'ok' and same['actions'] == [] and same['container']['id'] == cid, same
    manifests, blobs = _requests(registry, 'pull-always')
    assert manifests == asked[0] + 1 and blobs == asked[1]  # every run asks for the manifest, fetches nothing more

    _push(registry, fixtures, 'multilayer', 'pull-always')  # the tag now names another image
    assert box.run(name='pa', image=ref, **SLEEP)['_status'] == 'ok'  # missing: the tag is in the store, not asked
    change = '%s -> %s' % (old, new)
    check = box.run(check=True, diff=True, name='pa', image=ref, pull='always', **SLEEP)
    assert check['_status'] == 'changed', check
    assert check['actions'] == ['would pull image %s: %s' % (ref, change), 'recreated container pa (image %s: %s)' % (ref, change),
                                'started container pa']
    assert check['diff']['after']['image']['digest'] == new
    assert _tagged(box, ref) == old and box.info('pa')['id'] == cid and _requests(registry, 'pull-always')[1] == blobs

    res = box.run(diff=True, name='pa', image=ref, pull='always', **SLEEP)
    assert res['_status'] == 'changed', res
    assert res['actions'][0].startswith('pulled image %s: %s (' % (ref, change)), res['actions']
    # the new image's env and working_dir differ too: those are named with the image's digests
    assert res['actions'][1:] == ['recreated container pa (env, image %s: %s, working_dir)' % (ref, change), 'started container pa']
    assert res['container']['id'] != cid and res['container']['image']['digest'] == new and res['container']['state']['running']
    assert res['diff']['before']['config']['image']['digest'] == old and res['diff']['after']['config']['image']['digest'] == new
    assert _tagged(box, ref) == new
    assert box.exec('pa', 'cat /data/keep.txt')['stdout']  # the container runs the new image
    assert box.run(name='pa', image=ref, pull='always', **SLEEP)['_status'] == 'ok'
    assert box.run(name='pa', state='absent')['_status'] == 'changed'


def test_never_and_failed_pulls_leave_no_container(box, registry, fixtures):
    ref = _push(registry, fixtures, 'busybox-amd64', 'pull-never')
    res = box.run(name='pn', image=ref, pull='never', **SLEEP)
    assert res['_status'] == 'failed' and 'image %s' % ref in res['msg'] and 'it is not in the store' in res['msg'], res
    assert box.run(check=True, name='pn', image=ref, pull='never', **SLEEP)['_status'] == 'failed'
    gone = '%s/nsbox/not-there:latest' % registry.host
    for pull in ('missing', 'always'):
        for check in (True, False):
            bad = box.run(check=check, name='pn', image=gone, pull=pull, **SLEEP)
            assert bad['_status'] == 'failed' and 'failed to pull image %s: it is not in the store and pulling it failed: ' % gone in bad['msg'], bad
    assert box.info('pn') is None and _tagged(box, ref) is None and _tagged(box, gone) is None


def test_by_digest(box, registry, fixtures):
    digest = fixtures.digests['busybox-amd64']
    _push(registry, fixtures, 'busybox', 'pull-digest')  # the two-platform index; its amd64 manifest by digest
    ref = '%s/nsbox/pull-digest@%s' % (registry.host, digest)
    assert 'not in the store' in box.run(name='pd', image=ref, pull='never', **SLEEP)['msg']
    for pull in ('missing', 'always'):
        check = box.run(check=True, name='pd', image=ref, pull=pull, **SLEEP)
        assert check['_status'] == 'changed' and check['actions'][0] == 'would pull image %s: %s' % (ref, digest), check
    res = box.run(name='pd', image=ref, pull='always', **SLEEP)
    assert res['_status'] == 'changed' and res['actions'][0].startswith('pulled image %s: %s' % (ref, digest)), res
    assert res['container']['image'] == {'name': ref, 'digest': digest, 'id': res['container']['image']['id']}
    asked = _requests(registry, 'pull-digest')
    for pull in ('missing', 'always', 'never'):  # present by digest: nothing to ask, whatever the policy
        assert box.run(name='pd', image=ref, pull=pull, **SLEEP)['_status'] == 'ok'
    assert _requests(registry, 'pull-digest') == asked
    assert box.run(name='pd', state='absent')['_status'] == 'changed'
