/* A static probe for the security tests: calls what busybox cannot and prints the outcome.
 *
 * Each subcommand makes one system call (raw, through syscall(2): no libc wrapper may differ)
 * and prints "NAME ok" or "NAME ERRNAME" (EPERM, ENOSYS...), exit 0 either way; a bad
 * command line exits 2. Harmless when allowed: invalid arguments, nothing changed on a host.
 * Built by the test fixtures with gcc -static (tests/harness/probe.py).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ENOENT: return "ENOENT";
    case ETXTBSY: return "ETXTBSY";
    case EROFS: return "EROFS";
    case ESRCH: return "ESRCH";
    case ENOTDIR: return "ENOTDIR";
    case EEXIST: return "EEXIST";
    case ENXIO: return "ENXIO";
    case EBUSY: return "EBUSY";
    case ENOEXEC: return "ENOEXEC";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return NULL;
    }
}

static int report(const char *what, long res)
{
    int e = res < 0 ? errno : 0;
    const char *name = errname(e);
    if (name)
        printf("%s %s\n", what, name);
    else
        printf("%s errno%d\n", what, e);
    return 0;
}

/* ptrace-attach a child of our own (gdb/strace style), then detach and end it. */
static int probe_ptrace(void)
{
    pid_t child = fork();
    if (child < 0)
        return report("ptrace", -1);
    if (child == 0) {
        for (;;)
            pause();
    }
    long res = ptrace(PTRACE_ATTACH, child, NULL, NULL);
    int e = errno;
    if (res == 0) {
        waitpid(child, NULL, __WALL);
        ptrace(PTRACE_DETACH, child, NULL, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    errno = e;
    return report("ptrace", res);
}

/* Attach to `pid` as a debugger would and let it go on as it was: PTRACE_SEIZE (the permission check of
 * PTRACE_ATTACH) and PTRACE_INTERRUPT rather than PTRACE_ATTACH's SIGSTOP, which could outlive the detach and
 * leave the process stopped (when its exec's stop is the one waited for). A signal stopped on is passed on. */
static long attach_and_release(pid_t pid)
{
    if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0)
        return -1;
    int status;
    if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) == 0 && waitpid(pid, &status, __WALL) == pid && WIFSTOPPED(status)) {
        int sig = (status >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(status);
        ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)sig);
    }
    return 0;
}

/* Whether /proc shows a process of this pid namespace other than `self`. */
static int others(pid_t self)
{
    DIR *d = opendir("/proc");
    struct dirent *ent;
    int found = 0;
    while (d && !found && (ent = readdir(d)) != NULL) {
        char *tail;
        long pid = strtol(ent->d_name, &tail, 10);
        found = !*tail && pid > 0 && pid != self;
    }
    if (d) closedir(d);
    return found;
}

/* For `seconds`, or until /tmp/watch-stop exists, look at every process of this pid namespace but ourselves:
 * open its exe O_PATH and, unless that is a file of the container's own rootfs, open it for writing and reopen
 * the O_PATH fd for writing (the CVE-2019-5736 way); ptrace-attach it. Prints one line per process seen:
 * "pid EXE-LINK write=.. path=.. reopen=.. attach=.. capeff=HEX seccomp=MODE" (the status read after those
 * attempts; write=own: the exe was the container's own binary, not tried: that would only make the container's
 * next exec of it fail with ETXTBSY), then "watched N" once no other process is left (at most 5 s). */
static int probe_watch(int seconds)
{
    static char seen[4194304 / 8];
    int count = 0;
    time_t end = time(NULL) + seconds;
    pid_t self = getpid();
    struct stat root;
    if (stat("/", &root) < 0)
        return report("watch", -1);
    while (time(NULL) < end && access("/tmp/watch-stop", F_OK) != 0) {
        DIR *d = opendir("/proc");
        struct dirent *ent;
        if (!d)
            return report("watch", -1);
        while ((ent = readdir(d)) != NULL) {
            char *tail;
            long pid = strtol(ent->d_name, &tail, 10);
            if (*tail || pid <= 1 || pid == self || pid >= (long)sizeof(seen) * 8 || (seen[pid / 8] & (1 << (pid % 8))))
                continue;
            seen[pid / 8] |= 1 << (pid % 8);
            count++;
            char path[64], link[512] = "?", fdpath[64];
            snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
            ssize_t n = readlink(path, link, sizeof(link) - 1);
            link[n > 0 ? n : 1] = 0;
            int p = open(path, O_PATH | O_CLOEXEC);
            int ep = p < 0 ? errno : 0;
            struct stat st;
            int own = p >= 0 && fstat(p, &st) == 0 && st.st_dev == root.st_dev;
            int w = -1, ew = EBADF, r = -1, er = EBADF;
            if (!own) {
                w = open(path, O_WRONLY | O_CLOEXEC);
                ew = w < 0 ? errno : 0;
                if (p >= 0) {
                    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p);
                    r = open(fdpath, O_WRONLY | O_CLOEXEC);
                    er = r < 0 ? errno : 0;
                }
            }
            long a = attach_and_release((pid_t)pid);
            int ea = a < 0 ? errno : 0;
            char capeff[32] = "?", seccomp[8] = "?", line[256];
            snprintf(path, sizeof(path), "/proc/%ld/status", pid);
            FILE *st_file = fopen(path, "re");
            while (st_file && fgets(line, sizeof(line), st_file)) {
                sscanf(line, "CapEff: %31s", capeff);
                sscanf(line, "Seccomp: %7s", seccomp);
            }
            if (st_file) fclose(st_file);
            printf("%ld %s write=%s path=%s reopen=%s attach=%s capeff=%s seccomp=%s\n", pid, link,
                   own ? "own" : errname(ew) ? errname(ew) : "?", errname(ep) ? errname(ep) : "?",
                   own ? "own" : errname(er) ? errname(er) : "?", errname(ea) ? errname(ea) : "?", capeff, seccomp);
            fflush(stdout);
            if (w >= 0) close(w);
            if (r >= 0) close(r);
            if (p >= 0) close(p);
        }
        closedir(d);
    }
    /* the stop file's writer may still be finishing: as our pid namespace's init, exiting now would SIGKILL it */
    for (int tries = 0; tries < 100 && others(self); tries++)
        usleep(50000);
    printf("watched %d\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: probe keyctl|io_uring_setup|userfaultfd|clone3_ns|unshare_user|bpf|kexec_load|mount|reboot|"
                        "init_module|ptrace|open PATH|mknod PATH b|c MAJ MIN|watch SECONDS|fds\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "keyctl"))  /* KEYCTL_GET_KEYRING_ID of the session keyring, not created */
        return report(cmd, syscall(SYS_keyctl, 0, -3, 0, 0, 0));
    if (!strcmp(cmd, "io_uring_setup")) {
        unsigned char params[120] = {0};
        long fd = syscall(SYS_io_uring_setup, 1, params);
        report(cmd, fd);
        if (fd >= 0) close((int)fd);
        return 0;
    }
    if (!strcmp(cmd, "userfaultfd")) {
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
        report(cmd, fd);
        if (fd >= 0) close((int)fd);
        return 0;
    }
    if (!strcmp(cmd, "clone3_ns")) {  /* a child in new namespaces, which exits at once */
        struct clone_args args;
        memset(&args, 0, sizeof(args));
        args.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET;
        args.exit_signal = SIGCHLD;
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            waitpid((pid_t)pid, NULL, 0);
        return report(cmd, pid < 0 ? -1 : 0);
    }
    if (!strcmp(cmd, "unshare_user"))
        return report(cmd, syscall(SYS_unshare, CLONE_NEWUSER));
    if (!strcmp(cmd, "bpf")) {  /* BPF_MAP_CREATE with an all-zero attr: EINVAL when allowed */
        unsigned char attr[128] = {0};
        long fd = syscall(SYS_bpf, 0, attr, sizeof(attr));
        report(cmd, fd);
        if (fd >= 0) close((int)fd);
        return 0;
    }
    if (!strcmp(cmd, "kexec_load"))  /* no segments and a bad flag: EINVAL when allowed */
        return report(cmd, syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL));
    if (!strcmp(cmd, "mount"))
        return report(cmd, syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(cmd, "reboot"))  /* a command that does not exist: EINVAL when allowed */
        return report(cmd, syscall(SYS_reboot, 0xfee1dead, 672274793, 0x12345678, NULL));
    if (!strcmp(cmd, "init_module"))  /* no image: EFAULT when allowed */
        return report(cmd, syscall(SYS_init_module, NULL, 0, ""));
    if (!strcmp(cmd, "ptrace"))
        return probe_ptrace();
    if (!strcmp(cmd, "open") && argc == 3) {
        long fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        report(cmd, fd);
        if (fd >= 0) close((int)fd);
        return 0;
    }
    if (!strcmp(cmd, "mknod") && argc == 6) {
        mode_t kind = argv[3][0] == 'b' ? S_IFBLK : S_IFCHR;
        return report(cmd, mknod(argv[2], kind | 0600, makedev(atoi(argv[4]), atoi(argv[5]))));
    }
    if (!strcmp(cmd, "watch") && argc == 3)
        return probe_watch(atoi(argv[2]));
    if (!strcmp(cmd, "fds")) {  /* the fds of pid 1, as "fd -> target" lines */
        DIR *d = opendir("/proc/1/fd");
        struct dirent *ent;
        if (!d)
            return report(cmd, -1);
        while ((ent = readdir(d)) != NULL) {
            char path[320], link[512];
            if (ent->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "/proc/1/fd/%s", ent->d_name);
            ssize_t n = readlink(path, link, sizeof(link) - 1);
            link[n > 0 ? n : 0] = 0;
            printf("%s -> %s\n", ent->d_name, link);
        }
        closedir(d);
        return 0;
    }
    fprintf(stderr, "probe: unknown command %s\n", cmd);
    return 2;
}
