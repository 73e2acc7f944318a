/* What /proc says of processes (proc(5)). */
#pragma once

#include <sys/types.h>

/* Calls @fn for every live or zombie process whose parent is @parent, read
 * from /proc/PID/stat; processes that vanish meanwhile are skipped. Returns
 * 0, or -errno when /proc cannot be read. */
int proc_children(pid_t parent, void (*fn)(pid_t pid, void *userdata), void *userdata);
