#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: container
short_description: Create, start, stop, restart and remove containers (no daemon)
version_added: 0.1.0
description:
  - Runs containers from images of the nsbox image store, with options named as Docker names them.
    The container's init is made by the runtime itself (cgroup, then namespaces, then mounts,
    C(pivot_root), capabilities) and supervised by a small per-container process, so the task
    returns as soon as the container runs.
  - Idempotent against what the runtime reads back (the stored config, the image digest, the
    process in the kernel, the cgroup). A changed O(memory), O(memory_reservation), O(memory_swap),
    O(cpus), O(cpu_shares), O(cpuset_cpus), O(pids_limit) or O(blkio_weight) is written to the
    running container's cgroup (same process), as C(docker update) does; O(labels),
    O(annotations), O(stop_signal), O(stop_timeout), O(restart_policy) and O(restart_retries) are stored; any other change recreates
    the container. Taking a cgroup limit away recreates (a fresh cgroup has none).
  - O(comparisons) relaxes what counts as a difference, per option.
  - The supervisor applies O(restart_policy) (with Docker's back-off) and runs O(healthcheck);
    O(state=healthy) waits for it.
  - O(supervisor=systemd) (or V(auto) on a systemd host) makes the container a systemd unit instead.
  - Status comes from the kernel on every run (pid, its start time, the boot id); a container whose
    supervisor died is adopted by the next O(state=started) run.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Predicts pulls, creation, recreation, live updates, starts and stops; nothing is changed (see O(pull) for what a pull prediction reads).
  diff_mode:
    support: full
    description: The container's config and status before and after.
options:
  name:
    description: The container's name (unique on the host).
    type: str
    required: true
  state:
    description:
      - V(present) the container exists (created, or left running if it runs); V(started) it runs;
        V(stopped) it exists and does not run; V(restarted) it is stopped if running and started;
        V(absent) it is stopped and removed with its files, cgroup and mounts.
      - V(healthy) is V(started), then waits (at most O(healthy_wait_timeout)) until the O(healthcheck) reports
        healthy; the task fails when the container ends or the time runs out. A container without a
        healthcheck is refused.
      - A stop (V(stopped), V(restarted), V(absent)) is never undone by the restart policy.
    type: str
    choices: [present, started, stopped, restarted, healthy, absent]
    default: started
  recreate:
    description: Recreate even when nothing differs.
    type: bool
    default: false
  force_kill:
    description: Stop with SIGKILL at once instead of O(stop_signal) and O(stop_timeout).
    type: bool
    default: false
  image:
    description:
      - The image (a reference such as V(busybox), V(registry:5000/app:1.2) or V(registry:5000/app@sha256:...),
        or a bare manifest digest V(sha256:...) of an image in the store). O(pull) says when it is pulled.
        A tag that now names another digest recreates.
    type: str
  pull:
    description:
      - When to pull O(image), as M(nsbox.runtime.image) pulls it (the host config's registry mirrors,
        insecure registries and CA files; its store tag is updated the same way).
      - V(missing) pulls it when the reference is not in the store; V(always) on every run, and when
        the tag now names another manifest digest the container is recreated; V(never) only uses
        the store (an image not there is an error).
      - A reference by digest is pulled only when it is missing, whatever the policy (its content
        cannot change); a bare V(sha256:...) is never pulled.
      - A failed pull fails the task and changes nothing (no container is created or removed).
      - In check mode nothing is pulled or written; the registry is asked for the manifest only (no
        layers), so whether the image would change is exact. When the image is not in the store yet,
        its config is not known, so the predicted container config is not shown (only the image and
        digest in the diff).
      - Registries that need a login are not supported here yet; pull from them with M(nsbox.runtime.image) first
        and use V(never) or V(missing).
    type: str
    choices: [missing, always, never]
    default: missing
  command:
    description: The command (a string split as a shell would, or a list); default the image's C(Cmd).
    type: raw
  entrypoint:
    description: Replaces the image's C(Entrypoint) (and then its C(Cmd) too, as Docker does).
    type: list
    elements: str
  env:
    description: Environment variables, over the image's C(Env) and O(env_file). Quote booleans.
    type: dict
  env_file:
    description:
      - A file on the managed host in Docker's env-file format (C(KEY=value) lines, C(#) comments;
        a bare C(KEY) takes the value of the module's environment, skipped when unset).
      - Read on every run; a changed file recreates the container. O(env) wins over it.
    type: path
  working_dir:
    description: The working directory (created if missing); default the image's.
    type: str
  user:
    description: V(name), V(uid), V(name:group) or V(uid:gid), resolved in the image's C(/etc/passwd) and C(/etc/group).
    type: str
  group_add:
    description: Supplementary groups of the container's processes (also of M(nsbox.runtime.container_exec)), names from the image's C(/etc/group) or gids.
    type: list
    elements: str
  hostname:
    description: The container's hostname; default the first 12 characters of its id.
    type: str
  labels:
    description: Labels (over the image's).
    type: dict
  annotations:
    description: OCI annotations, stored with the container (free-form key/value metadata; changed without a restart).
    type: dict
  mounts:
    description:
      - Mounts, each a dict with C(type) (V(bind), V(volume) or V(tmpfs)), C(source), C(target), C(read_only), and
        for bind C(propagation), for volume C(no_copy) (also spelt C(volume_nocopy)), for tmpfs C(tmpfs_size) and C(tmpfs_mode).
      - V(bind) mounts an absolute host path (it must exist). C(propagation) is V(rprivate) (default, as Docker),
        V(private), V(rslave), V(slave), V(rshared) or V(shared); with a shared or slave propagation the container
        sees what the host mounts under the source later, which needs the source on a shared mount
        (C(mount --make-shared)); the task fails otherwise.
      - V(volume) mounts the named volume C(source) (see M(nsbox.runtime.volume)); one that does not exist is
        created with the container, as Docker does. On its first use, when it is empty, the image's content at
        C(target) is copied into it (files, owners, modes, symlinks, hard links, xattrs best-effort), once per
        volume; C(no_copy=true) skips that. Removing the container keeps the volume. Anonymous volumes (no
        C(source)) and the image's own C(Volumes) are not supported (the image's paths stay in the container's
        writable layer).
      - Targets are resolved inside the root filesystem; a symlink in the image never leads outside it.
    type: list
    elements: dict
  volumes:
    description:
      - Docker's short form, V(/host/path:/container/path[:OPTS]) for a bind mount or V(NAME:/container/path[:OPTS])
        for a named volume; OPTS a comma list of V(ro) or V(rw), V(nocopy) (volumes), a propagation (binds).
    type: list
    elements: str
  read_only:
    description: Mount the root filesystem read-only.
    type: bool
  shm_size:
    description: Size of the container's C(/dev/shm) tmpfs (default V(64m), as Docker).
    type: str
  tty:
    description:
      - Give the container a pseudo-terminal as stdin, stdout and stderr (its controlling terminal),
        as C(docker run -t). Its output is logged as C(stdout) (with the terminal's C(\r\n)).
      - The terminal lives as long as the container's supervisor; if that process is killed, the
        container gets a hangup, as with Docker's shim.
    type: bool
  interactive:
    description:
      - Keep stdin open (C(docker run -i)). The container's stdin is a FIFO in the state dir that
        stays open, so a program reading it waits instead of seeing end-of-file.
    type: bool
  memory:
    description: Memory limit (V(256m), V(1g)); changed live.
    type: str
  memory_reservation:
    description: Soft memory limit, reclaimed first under pressure (cgroup v1 C(memory.soft_limit_in_bytes), v2 C(memory.low)); changed live.
    type: str
  memory_swap:
    description: Memory plus swap limit (needs O(memory); V(-1) unlimited); changed live. Needs swap accounting on cgroup v1.
    type: str
  cpus:
    description: CPUs the container may use (V(0.5)); changed live.
    type: float
  cpu_shares:
    description: Relative CPU weight (2-262144, default 1024; v2 converts it to C(cpu.weight) as runc does); changed live.
    type: int
  cpuset_cpus:
    description: CPUs the container may run on (V(0-1), V(0,2)); changed live.
    type: str
  pids_limit:
    description: Most processes (threads) at once (1 to 4194304; V(-1) or V(0) for no limit, as Docker); changed live.
    type: int
  blkio_weight:
    description:
      - Relative block I/O weight (10-1000; v2 C(io.weight)); changed live. Needs an I/O scheduler
        with weights (BFQ, CFQ); where the host has none, creating the container fails and says so.
    type: int
  ulimits:
    description:
      - Resource limits of the container's processes, V(NAME:SOFT[:HARD]) (also V(NAME=SOFT:HARD)),
        V(-1) for unlimited, e.g. V(nofile:1024:2048). Names as Docker's (V(nofile), V(nproc), V(core),
        V(memlock), V(stack), ...). Also applied to M(nsbox.runtime.container_exec).
      - Raising a hard limit above the runtime's own needs C(CAP_SYS_RESOURCE).
    type: list
    elements: str
  oom_score_adj:
    description: The OOM killer's adjustment of the container's processes (-1000 to 1000); lowering it needs C(CAP_SYS_RESOURCE).
    type: int
  sysctls:
    description:
      - Namespaced kernel parameters of the container (C(net.*) with a network namespace of its own,
        C(fs.mqueue.*) and the IPC C(kernel.msg*), C(kernel.sem), C(kernel.shm*) with a private ipc
        namespace, C(kernel.domainname) with a private uts namespace); any other is refused, it would
        change the host.
      - A container with a network namespace of its own also gets C(net.ipv4.ip_unprivileged_port_start=0)
        and C(net.ipv4.ping_group_range=0 2147483647), as Docker sets them, unless given here.
    type: dict
  network_mode:
    description:
      - V(bridge) (the default, unless the host config's C(default_network_mode) says otherwise) puts the
        container on O(networks), else on the default network (C(nsbox0)), in a network namespace of its
        own made before its init; a network's name is the same as V(bridge) with that network first
        (C(docker run --network NAME)).
      - V(none) a private network namespace with only C(lo) up; V(host) the host's; V(container:NAME)
        (another running container's) or V(ns:NAME) (a namespace persisted by M(nsbox.runtime.namespace),
        e.g. a pod's).
    type: str
  networks:
    description:
      - The networks (M(nsbox.runtime.network)) the container joins, in order (eth0, eth1, ...; the default
        route goes through the first) as names, or dicts with C(name), C(ipv4_address) (a fixed address;
        default the lowest free one) and C(aliases) (more names it answers to on that network).
      - Containers on the same user-defined network find each other by name and alias through their
        C(/etc/hosts), rewritten in place as containers come and go (no DNS server). On the default
        network, as Docker's, they do not.
    type: list
    elements: raw
  published_ports:
    description:
      - Ports of the host forwarded to the container (DNAT in nsbox's nftables table), as Docker writes
        them, C([[IP:]HOST:]CONTAINER[/tcp|udp]) with ranges (V(8080:80), V(127.0.0.1:5353:53/udp),
        V(8000-8001:80-81)); reachable from other hosts and from the host itself (on 127.0.0.1 too).
      - A port that another container publishes or a host process listens on is refused at start,
        with nothing left behind. A host port chosen at random is not supported.
    type: list
    elements: str
  dns:
    description: Name servers for the container's C(/etc/resolv.conf); default the host's (loopback ones left out).
    type: list
    elements: str
  dns_search:
    description: Search domains for C(/etc/resolv.conf); default the host's.
    type: list
    elements: str
  dns_options:
    description: C(options) of C(/etc/resolv.conf) (V(ndots:2)); default the host's.
    type: list
    elements: str
  extra_hosts:
    description: More C(/etc/hosts) entries, a dict (name to address) or Docker's list of V(name:address).
    type: raw
  pid_mode:
    description: V(private) (default), V(host), V(container:NAME) or V(ns:NAME).
    type: str
  ipc_mode:
    description: V(private) (default), V(host), V(container:NAME) or V(ns:NAME).
    type: str
  uts_mode:
    description: V(private) (default), V(host), V(container:NAME) or V(ns:NAME).
    type: str
  stop_signal:
    description: The signal that asks the container to stop; default the image's C(StopSignal), else V(SIGTERM).
    type: str
  stop_timeout:
    description: Seconds to wait after O(stop_signal) before SIGKILL (default 10).
    type: int
  healthy_wait_timeout:
    description: Seconds O(state=healthy) waits for the container to be healthy.
    type: float
    default: 300
  restart_policy:
    description:
      - What the supervisor does when the container ends, as Docker. V(no) nothing; V(on-failure) start
        it again after a non-zero (or unknown) exit code, at most O(restart_retries) times (V(on-failure:N)
        says the same); V(always) and V(unless-stopped) start it again whatever the code.
      - Between an end and the next start it waits 100ms, doubled each time up to a minute, back to
        100ms after a run of 10s or more; the container's status meanwhile is V(restarting). A stop by
        this module is never undone. C(restart_count) in RV(container) counts the restarts since the
        last start by this module.
      - Changing it updates the stored config only (it is read when the container ends).
    type: str
  restart_retries:
    description: The most restarts of O(restart_policy=on-failure) (0, the default, is no limit).
    type: int
  healthcheck:
    description:
      - A command the supervisor runs inside the container to tell whether it is healthy, as Docker's
        C(HEALTHCHECK); default the image's. Changing it recreates the container.
      - C(test) a string (run with C(/bin/sh -c)), a list V([CMD, prog, arg...]), V([CMD-SHELL, command])
        or V([NONE]) (no healthcheck, also none of the image); C(interval) between the end of a check and
        the next (default V(30s)); C(timeout) of one check (V(30s)); C(retries) failures in a row that make it
        unhealthy (3); C(start_period) during which failures do not count (V(0s)). Durations as Docker's
        (V(1m30s), V(500ms)) or seconds.
      - The result (status V(starting), V(healthy) or V(unhealthy), the failing streak, the last five
        checks) is in C(state.health) of RV(container) and in M(nsbox.runtime.container_info).
    type: dict
  init:
    description: Run Debian's static C(catatonit) as pid 1 (bind-mounted read-only), which forwards signals and reaps zombies.
    type: bool
  cap_add:
    description:
      - Capabilities to add to the default set (Docker's 14, C(CAP_CHOWN) to C(CAP_AUDIT_WRITE)), by name with or
        without C(CAP_), in any case; V(ALL) adds every capability the running kernel knows.
      - As Docker, the defaults minus O(cap_drop) plus O(cap_add) (an added one wins); O(cap_add=[ALL]) gives all
        but those dropped; O(cap_drop=[ALL]) keeps only those added.
      - A root process gets the set as effective and permitted capabilities; another user only as the bounding
        set (its effective set is empty). The set also decides what the default seccomp profile allows
        (for example C(mount), C(unshare) and C(setns) with C(SYS_ADMIN), C(reboot) with C(SYS_BOOT)).
    type: list
    elements: str
  cap_drop:
    description:
      - Capabilities to drop from the default set; V(ALL) drops them all (then only O(cap_add) is kept). See O(cap_add).
    type: list
    elements: str
  privileged:
    description:
      - Every capability of the host's capability bounding set, no seccomp filter, no masked or read-only
        paths under C(/proc) and C(/sys), C(/sys) writable, every device allowed in the cgroup and the host's
        device nodes (those under C(/dev)) made in the container's C(/dev), as Docker.
      - No-new-privileges still follows O(security_opt) (on by default).
      - Not combined with O(cap_add), O(cap_drop) or a seccomp profile file (they would do nothing).
    type: bool
  security_opt:
    description:
      - Docker's security options, each once.
      - V(seccomp=unconfined) runs without a seccomp filter; V(seccomp=/path/profile.json) uses a profile in
        Docker's JSON format from that file on the managed host. The file is read when the container is created
        and stored with its config, so a changed file recreates the container. Without it, Docker's default
        profile (refused syscalls fail with EPERM; those that need a capability are allowed with it).
      - V(no-new-privileges), V(no-new-privileges=true) or V(no-new-privileges=false) (also with a colon).
        nsbox's default is V(true), stricter than Docker and podman, which default to false. Set it to false
        for images that rely on setuid programs (C(su), C(sudo), C(ping) without capabilities).
      - AppArmor and SELinux options are refused (not applied by nsbox).
    type: list
    elements: str
  userns_mode:
    description:
      - V(host) (default) runs the container in the host's user namespace (its root is the host's root, held in
        by capabilities, seccomp and the rest). V(auto) gives it a user namespace of its own with a range of 65536
        host ids allocated from the pool in the host config (C(userns.pool), default from 2147483648 on, clear of
        other ranges), freed when the container is removed; its root is that range's first id on the host.
      - The rootfs is made usable through idmapped mounts where the kernel has them, else its files are shifted
        (chown) into the range; see docs/container.md, "User namespaces".
      - A user namespace needs private pid, ipc and uts namespaces and no O(privileged); O(network_mode=host) is refused.
      - A change recreates the container.
    type: str
    choices: [host, auto]
  uidmap:
    description:
      - An explicit uid map, Docker's and podman's C(container_id:host_id:size) entries; implies a user namespace
        (leave O(userns_mode) out). Entries may not overlap, map host id 0, or reach into the pool of V(auto).
      - A change recreates the container.
    type: list
    elements: str
  gidmap:
    description:
      - An explicit gid map, as O(uidmap); defaults to O(uidmap).
    type: list
    elements: str
  devices:
    description:
      - Host devices for the container, as Docker's C(--device) takes them, V(/dev/HOST), V(/dev/HOST:/dev/CONTAINER),
        V(/dev/HOST:PERMS) or V(/dev/HOST:/dev/CONTAINER:PERMS) with PERMS of V(r), V(w) and V(m) (default V(rwm)).
      - The node is made in the container's C(/dev) with the host node's type, numbers, mode and owner, and its
        cgroup allows it with PERMS. The host node is read when the container is created (a changed node recreates it).
      - Every container's cgroup denies all other devices but the standard ones (C(null), C(zero), C(full),
        C(random), C(urandom), C(tty), C(console), C(ptmx), the ptys, C(tun); and creating any node, not opening it).
    type: list
    elements: str
  log:
    description:
      - Logging of the container's stdout and stderr, a dict with C(driver) (V(json-file), Docker's
        format), C(max_size) (V(10m)) and C(max_files) (rotated files kept, default 1).
    type: dict
  supervisor:
    description:
      - What supervises the running container. V(nsbox) (the default) the module's own per-container
        supervisor. V(systemd) a unit C(nsbox-<name>.service) in C(/etc/systemd/system) (C(Type=notify),
        the container's init is the unit's main process, no extra process; stdout and stderr in the
        journal; C(Restart=) from O(restart_policy); the stop is systemd's, O(stop_signal) then SIGKILL
        after O(stop_timeout)); it needs systemd as PID 1. V(auto) is V(systemd) where systemd is PID 1,
        else V(nsbox).
      - With a unit, O(state) V(started), V(stopped) and V(restarted) go through C(systemctl), so systemd
        never fights the module; the unit is written only when its text changes, then C(daemon-reload);
        V(absent) stops, disables and removes it. A change of supervisor recreates the container.
    type: str
    choices: [nsbox, systemd, auto]
  enabled:
    description:
      - With a unit, whether it is enabled (C(WantedBy=multi-user.target)), so that the container comes
        back after a reboot. Default V(true).
      - Refused with O(supervisor=nsbox) (it would do nothing); kept with O(supervisor=auto) on a host
        without systemd.
    type: bool
  depends_on:
    description:
      - The containers (names) this one needs. M(nsbox.runtime.containers) converges them first, whatever
        the supervisor; with a unit they are also C(After=) and C(Requires=) on their units
        C(nsbox-<name>.service) (which must exist, O(supervisor=systemd) too).
    type: list
    elements: str
  comparisons:
    description:
      - How the options are compared with the existing container, by option name, as community.docker's
        C(comparisons) (V(*) sets the default for all).
      - V(strict) (default) any difference counts; V(ignore) the option is not compared (the container
        keeps what it has until something else recreates it); V(allow_more_present) for lists and
        dicts, the container may have more entries than given (e.g. labels set by others).
      - Options that fill one setting together (O(mounts) and O(volumes), O(env) and O(env_file)) are
        compared as one; the first of them named here decides.
    type: dict
'''

EXAMPLES = r'''
- name: A web server
  nsbox.runtime.container:
    name: web
    image: busybox
    command: httpd -f -p 8080 -h /var/www
    memory: 64m
    pids_limit: 100

- name: Follow a tag (recreated when the registry's tag names another image)
  nsbox.runtime.container:
    name: app
    image: registry.lan:5000/app:stable
    pull: always

- name: Run to completion and read the exit code
  nsbox.runtime.container:
    name: job
    image: busybox
    command: [sh, -c, 'echo done; exit 3']
  register: job

- name: Two containers sharing a persisted network namespace (a pod)
  nsbox.runtime.container:
    name: "{{ item }}"
    image: busybox
    command: sleep 3600
    network_mode: ns:pod1
    init: true
  loop: [app, sidecar]

- name: Data in a named volume (created if missing; kept when the container is removed)
  nsbox.runtime.container:
    name: db
    image: registry.lan:5000/postgres:16
    mounts:
      - {type: volume, source: pgdata, target: /var/lib/postgresql/data}
      - {type: bind, source: /srv/media, target: /media, read_only: true, propagation: rslave}

- name: A service that restarts on failure (at most 5 times) and is waited for until healthy
  nsbox.runtime.container:
    name: api
    image: registry.lan:5000/api:2
    restart_policy: on-failure
    restart_retries: 5
    healthcheck:
      test: [CMD, wget, -q, -O, /dev/null, http://127.0.0.1:8080/health]
      interval: 5s
      retries: 3
      start_period: 30s
    state: healthy

- name: A web server on a user network, published on port 8080 of the host
  nsbox.runtime.container:
    name: front
    image: busybox
    command: httpd -f -p 80 -h /srv
    networks:
      - name: backend
        aliases: [www]
    published_ports: ['8080:80']

- name: Fewer capabilities, one more, and a seccomp profile of one's own
  nsbox.runtime.container:
    name: ntp
    image: registry.lan:5000/chrony:4
    cap_drop: [ALL]
    cap_add: [SYS_TIME, NET_BIND_SERVICE, SETUID, SETGID]
    security_opt:
      - seccomp=/etc/nsbox/seccomp/chrony.json
      - no-new-privileges

- name: A container whose root is not root on the host (ids from the host's pool)
  nsbox.runtime.container:
    name: sandbox
    image: busybox
    command: sleep infinity
    userns_mode: auto

- name: A database and an app under systemd (units nsbox-db.service and nsbox-app.service, enabled)
  nsbox.runtime.container:
    name: "{{ item.name }}"
    image: "{{ item.image }}"
    supervisor: auto
    restart_policy: on-failure
    restart_retries: 3
    depends_on: "{{ item.depends_on }}"
  loop:
    - {name: db, image: 'registry.lan:5000/postgres:16', depends_on: []}
    - {name: app, image: 'registry.lan:5000/app:2', depends_on: [db]}

- name: A FUSE filesystem inside (the device, and the capability mount needs)
  nsbox.runtime.container:
    name: sshfs
    image: registry.lan:5000/sshfs:3
    devices: [/dev/fuse]
    cap_add: [SYS_ADMIN]

- name: Remove it
  nsbox.runtime.container:
    name: web
    state: absent
'''

RETURN = r'''
container:
  description: The container after the task (none after O(state=absent)).
  returned: success
  type: dict
  sample:
    id: 3f1c0b0f9d2e4a6b8c0d1e2f3a4b5c6d7e8f90112233445566778899aabbccdd
    name: web
    image: {name: busybox, digest: 'sha256:5a1e...', id: 'sha256:9b2c...'}
    state: {status: running, running: true, supervised: true, pid: 4242, exit_code: null, oom_killed: false,
            started_at: '2026-11-22T22:31:21.123456789Z', finished_at: null, restart_count: 0,
            health: {status: healthy, failing_streak: 0, log: [{start: '2026-11-22T22:31:26.1Z', end: '2026-11-22T22:31:26.2Z',
                                                              exit_code: 0, output: ''}]}}
    config: {args: [httpd, -f, -p, '8080'], env: ['PATH=/usr/bin:/bin'], resources: {memory: 64m}}
unit:
  description: The container's systemd unit as systemd sees it after the task (O(supervisor=systemd) only).
  returned: when the container has a unit
  type: dict
  sample: {name: nsbox-web.service, path: /etc/systemd/system/nsbox-web.service, enabled: true, active: true,
           active_state: active, sub_state: running, main_pid: 4242, restarts: 0}
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ['created container web from busybox', 'started container web']
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils.container_task import argument_spec, ensure
from ..module_utils._runtime.errors import NsboxError


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS, **argument_spec()), supports_check_mode=True)
    result = {'changed': False, 'actions': [], 'container': None}
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
        out = ensure(cfg, module.params, module.check_mode)
    except NsboxError as exc:
        fail(module, exc, **result)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
