# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LayerStream: any pattern of read sizes yields the same bytes, size and diff_id."""
from __future__ import annotations

import gzip
import hashlib
import io

from hypothesis import given, settings, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import layer


@settings(max_examples=60, deadline=None)
# Plain data that begins with gzip's or zstd's magic would be sniffed as compressed: a tar never does.
@given(data=st.binary(min_size=0, max_size=3 * 1024 * 1024 // 2).map(lambda b: b * 2).filter(lambda b: not b.startswith((b'\x1f\x8b', b'\x28\xb5\x2f\xfd'))),
       sizes=st.lists(st.one_of(st.integers(1, 700), st.integers(512, 3 << 20), st.just(-1)), min_size=1, max_size=40),
       gz=st.booleans())
def test_any_read_sizes_give_the_same_stream(data, sizes, gz):
    blob = gzip.compress(data, compresslevel=1) if gz else data
    stream = layer.open_layer(io.BytesIO(blob))
    got = []
    i = 0
    while True:
        n = sizes[i % len(sizes)]
        i += 1
        chunk = stream.read(n)
        if n > 0:
            assert len(chunk) <= n
        if not chunk:
            break
        got.append(chunk)
    assert b''.join(got) == data
    assert stream.size == len(data)
    assert stream.diff_id == 'sha256:' + hashlib.sha256(data).hexdigest()


def test_small_reads_stay_cheap():
    """512-byte reads (tarfile's header reads) over 64 MiB: linear, not a copy of the buffer per read."""
    data = bytes(range(256)) * (64 * 4096)
    stream = layer.open_layer(io.BytesIO(data))
    n = 0
    while True:
        chunk = stream.read(512)
        if not chunk:
            break
        n += len(chunk)
    assert n == len(data)
