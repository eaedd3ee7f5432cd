/*
 * floor: the least a container start must do, as a yardstick for `berth run` (issue 20).
 *
 *   floor [-n NAMESPACES] [-c CGROUP2_DIR] ROOTFS [PROGRAM [ARG...]]
 *
 * clone3 with the namespaces (default "pid,net,ipc,uts,mount,cgroup"; the bench scripts pass
 * the bundle's own list), then in the child: the mount tree made private, ROOTFS bound onto
 * itself, proc on ROOTFS/proc, a tmpfs on ROOTFS/dev, pivot_root into ROOTFS, the old root
 * detached, execve PROGRAM (default /bin/true); the parent waits and exits with its status.
 * With -c, the child is created straight into a fresh cgroup2 directory (CLONE_INTO_CGROUP)
 * that is removed after the wait: the cheapest cgroup a runtime could make.
 *
 * No state, no config parsing, no /dev nodes, no masked paths, no capabilities or seccomp:
 * everything a runtime does beyond this is what the OCI spec and its callers ask for. Any
 * failure prints the failing step and exits 1 (the bench scripts then stop).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static void die(const char *what, const char *arg) {
  fprintf(stderr, "floor: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  _exit(1);
}

static uint64_t ns_flags(char *list) {
  static const struct { const char *name; uint64_t flag; } known[] = {
    {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET}, {"network", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"mount", CLONE_NEWNS},
    {"cgroup", CLONE_NEWCGROUP}, {"user", CLONE_NEWUSER}, {"time", CLONE_NEWTIME},
  };
  uint64_t flags = 0;
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
      if (strcmp(tok, known[i].name) == 0) break;
    if (i == sizeof known / sizeof known[0]) {
      fprintf(stderr, "floor: unknown namespace %s\n", tok);
      exit(2);
    }
    flags |= known[i].flag;
  }
  return flags;
}

static void child(const char *rootfs, char **argv) {
  char path[4096];
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private", NULL);
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)) die("bind", rootfs);
  snprintf(path, sizeof path, "%s/proc", rootfs);
  if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) die("mount proc on", path);
  snprintf(path, sizeof path, "%s/dev", rootfs);
  if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"))
    die("mount tmpfs on", path);
  if (chdir(rootfs)) die("chdir", rootfs);
  if (syscall(SYS_pivot_root, ".", ".")) die("pivot_root", rootfs);
  if (umount2(".", MNT_DETACH)) die("detach the old root", NULL);
  if (chdir("/")) die("chdir", "/");
  char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
  execve(argv[0], argv, envp);
  die("execve", argv[0]);
}

int main(int argc, char **argv) {
  char defns[] = "pid,net,ipc,uts,mount,cgroup";
  char *nslist = defns;
  const char *cgdir = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "+n:c:")) != -1) {
    switch (opt) {
      case 'n': nslist = optarg; break;
      case 'c': cgdir = optarg; break;
      default:
        fprintf(stderr, "usage: floor [-n NAMESPACES] [-c CGROUP2_DIR] ROOTFS [PROGRAM [ARG...]]\n");
        return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "usage: floor [-n NAMESPACES] [-c CGROUP2_DIR] ROOTFS [PROGRAM [ARG...]]\n");
    return 2;
  }
  const char *rootfs = argv[optind];
  char *deflt[] = {"/bin/true", NULL};
  char **prog = optind + 1 < argc ? argv + optind + 1 : deflt;

  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = ns_flags(nslist);
  args.exit_signal = SIGCHLD;
  int cgfd = -1;
  if (cgdir) {
    if (mkdir(cgdir, 0755)) die("mkdir", cgdir);
    cgfd = open(cgdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cgfd < 0) die("open", cgdir);
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgfd;
  }
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) die("clone3", NULL);
  if (pid == 0) child(rootfs, prog);
  int status;
  if (waitpid((pid_t)pid, &status, 0) < 0) die("waitpid", NULL);
  if (cgdir) {
    close(cgfd);
    if (rmdir(cgdir)) die("rmdir", cgdir);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
