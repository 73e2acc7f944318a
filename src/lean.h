/* The lean child: what a connection's child never runs is left out of its
 * address space. libsystemd, and the libraries only it pulls in, are the
 * parent's alone (it speaks to systemd and the journal; a child never does),
 * so they are marked MADV_DONTFORK once, before the first fork: a fork then
 * neither copies their mappings and page-table entries nor tears them down
 * at the child's exit. The parent's tables are kept out the same way, by
 * parent-only.h.
 *
 * The price is a rule: the child's path (echo.c, from echo_child() to
 * _exit()) must never call into those libraries, directly or through
 * log.c, or it takes SIGSEGV. The fork itself must be _Fork(): fork() runs
 * the atfork handlers in the child, and libsystemd registers one. tests/integration/test_child_maps_are_lean.py
 * reads a live child's /proc/PID/maps, and tests/unit/child-calls.py checks
 * what echo.c calls. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Whether the shared object at @path (as the dynamic linker names it) is one
 * the child never uses. Pure: by file name. */
bool lean_object_is_parent_only(const char *path);

/* Marks every mapping of every parent-only object MADV_DONTFORK. Returns the
 * number of objects marked, or -errno (then some may be marked: harmless);
 * -ENOEXEC, marking nothing, for a program not linked with -z now. */
int lean_trim_libraries(void);

/* Marks the malloc heap (the brk area, "[heap]") MADV_DONTFORK. Only the
 * parent allocates: its fd store names, libsystemd's and stdio's buffers; a
 * child's path never calls malloc() or free() and reads nothing there (its
 * connection and setup are on the stack). What the heap grows by later is a
 * mapping of its own, copied as before. Returns 1 if marked, 0 if there is
 * no "[heap]" (sanitizers and valgrind allocate elsewhere), or -errno. */
int lean_trim_heap(void);

/* Unregisters the restartable-sequences area glibc registers for the main
 * thread. The kernel writes that area (in the thread block) on the way back
 * to user space after a preemption or a migration, in the parent and in every
 * child alike, so each child ends up owning a copy of that page; echod uses
 * no rseq (glibc only for sched_getcpu(), which falls back to a syscall).
 * Returns 0 (also when glibc registered none: old kernel, valgrind), or
 * -errno. Call it before the first fork, in a single-threaded process. */
int lean_unregister_rseq(void);

/* fork(2) as the kernel does it, and nothing more: clone3() with only
 * exit_signal = SIGCHLD, no CLONE_VM, a child with its own copy of
 * everything. glibc's _Fork() also has the kernel write the child's TID into
 * its thread block (CLONE_CHILD_SETTID), registers its robust-mutex list
 * again and resets abort()'s lock: one more syscall and two more pages every
 * child copies, for thread and robust-mutex bookkeeping a child that runs
 * echo.c and _exit()s never uses (glibc asks the kernel for the TID when it
 * needs it, as in raise()). Falls back to _Fork() where clone3() is ENOSYS
 * (old kernels, valgrind, some seccomp filters). Returns as fork() does. */
pid_t lean_fork(void);
