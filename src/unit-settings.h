/* What the service manager knows of our unit and does not pass us: systemd
 * 254 and later pass the fd store's size in $FDSTORE, systemd 252 does not,
 * so echod asks the manager for its unit's FileDescriptorStoreMax= over
 * D-Bus. Logs nothing: the caller decides what not knowing means. */
#pragma once

/* FileDescriptorStoreMax= of the service unit this process runs in, into
 * @ret. Returns 0, or -errno (-ENODATA: not in a service unit; others: no
 * system bus, or the manager did not answer within 2 s). */
int unit_fd_store_max(unsigned *ret);
