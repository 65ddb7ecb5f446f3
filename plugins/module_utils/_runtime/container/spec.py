# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The typed container spec: a container's configuration as frozen values.

The stored record (``config.json``) is what the option table (``options.py``) checks and
resolves, and what comparisons read: JSON a person can read, with defaults left out where
older records lack them. :class:`ContainerSpec` is the same configuration typed, made from
a record with :meth:`ContainerSpec.of` (fields a record of an older version lacks take the
table's ``old`` values) and turned back with :meth:`ContainerSpec.record`, which gives the
record unchanged. The translation into a launch spec (``assemble.process_spec``) reads a container
through it; the cgroup limits go from the record to a cgroups Resources (``options.resources_of``),
the one typed form of a limit from the option to the cgroup file.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from . import options


@dataclasses.dataclass(frozen=True)
class ImageRef:
    name: str
    digest: str
    id: str = ''


@dataclasses.dataclass(frozen=True)
class Mount:
    """A bind, named volume or tmpfs; the record leaves out the defaults (as ``parse.mount`` stores them)."""

    type: str
    target: str
    read_only: bool = False
    source: Optional[str] = None
    propagation: str = 'rprivate'
    no_copy: bool = False
    tmpfs_size: Optional[int] = None
    tmpfs_mode: Optional[int] = None

    def record(self):
        out = {'type': self.type, 'target': self.target, 'read_only': self.read_only}
        if self.source is not None:
            out['source'] = self.source
        if self.propagation != 'rprivate':
            out['propagation'] = self.propagation
        if self.no_copy:
            out['no_copy'] = True
        for key in ('tmpfs_size', 'tmpfs_mode'):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclasses.dataclass(frozen=True)
class PublishedPort:
    host_ip: str
    host_port: int
    container_port: int
    protocol: str = 'tcp'


@dataclasses.dataclass(frozen=True)
class NetworkAttachment:
    name: str
    ipv4_address: Optional[str] = None
    aliases: tuple = ()


@dataclasses.dataclass(frozen=True)
class Healthcheck:
    test: tuple
    interval: float
    timeout: float
    start_period: float
    retries: int


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    name: str = 'no'
    max_retries: int = 0


@dataclasses.dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclasses.dataclass(frozen=True)
class LogConfig:
    driver: str = 'json-file'
    max_size: Optional[int] = None
    max_files: int = 1


@dataclasses.dataclass(frozen=True)
class Userns:
    mode: str = 'host'
    uid_map: Optional[tuple] = None
    gid_map: Optional[tuple] = None


def _one(cls):
    return lambda value: None if value is None else cls(**{k: _tuples(v) for k, v in value.items()})


def _many(cls):
    return lambda value: tuple(_one(cls)(v) for v in value or ())


def _tuples(value):
    return tuple(value) if isinstance(value, list) else value


def _plain(value):
    """A typed value back to its JSON form (lists, dicts)."""
    if hasattr(value, 'record'):
        return value.record()
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# Record field -> its type (fields not named are kept as they are: strings, numbers, dicts of strings).
TYPES = {'image': _one(ImageRef), 'mounts': _many(Mount), 'published_ports': _many(PublishedPort), 'networks': _many(NetworkAttachment),
         'healthcheck': _one(Healthcheck), 'restart_policy': _one(RestartPolicy), 'ulimits': _many(Ulimit), 'log': _one(LogConfig),
         'userns': _one(Userns)}
TUPLES = ('entrypoint', 'command', 'args', 'env', 'group_add', 'dns', 'dns_search', 'dns_options', 'cap_add', 'cap_drop', 'depends_on',
          'devices')


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """A container's configuration, typed (see the module docstring). Field order is the record's."""

    name: str
    image: ImageRef
    entrypoint: tuple
    command: tuple
    args: tuple
    env: tuple
    working_dir: str
    user: str
    hostname: Optional[str]
    group_add: tuple
    labels: dict
    annotations: dict
    mounts: tuple
    read_only: bool
    shm_size: Optional[int]
    tty: bool
    interactive: bool
    resources: dict
    ulimits: tuple
    oom_score_adj: Optional[int]
    sysctls: dict
    namespaces: dict
    networks: tuple
    published_ports: tuple
    dns: tuple
    dns_search: tuple
    dns_options: tuple
    extra_hosts: dict
    stop_signal: str
    stop_timeout: int
    restart_policy: RestartPolicy
    healthcheck: Optional[Healthcheck]
    init: bool
    log: LogConfig
    supervisor: str
    enabled: bool
    depends_on: tuple
    cap_add: tuple
    cap_drop: tuple
    privileged: bool
    security_opt: dict
    userns: Userns
    devices: tuple
    schema_version: int = options.SCHEMA_VERSION

    @classmethod
    def of(cls, record):
        """The typed spec of a stored record (of this version or an older one)."""
        values = {}
        for field in dataclasses.fields(cls):
            raw = options.value_of(record, field.name)
            if raw is None and field.name == 'schema_version':
                raw = options.SCHEMA_VERSION
            values[field.name] = TYPES[field.name](raw) if field.name in TYPES else tuple(raw or ()) if field.name in TUPLES else raw
        return cls(**values)

    def record(self):
        """The stored form: ``ContainerSpec.of(r).record() == r`` for a record of this version."""
        out = {'schema_version': self.schema_version}
        for field in dataclasses.fields(self):
            if field.name != 'schema_version':
                out[field.name] = _plain(getattr(self, field.name))
        return out
