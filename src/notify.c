/* Messages to the service manager; see notify.h. */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "fd-util.h"

void status_format(char *buf, size_t size, const struct status *st) {
        char refused[48] = "", datagrams[96] = "";

        if (st->n_refused > 0)
                snprintf(refused, sizeof refused, ", %" PRIu64 " refused", st->n_refused);
        if (st->datagrams)
                snprintf(datagrams, sizeof datagrams,
                         ", %" PRIu64 " datagrams echoed, %" PRIu64 " dropped",
                         st->datagrams_echoed, st->datagrams_dropped);
        snprintf(buf, size, "%u active, %" PRIu64 " total connections%s%s%s", st->n_active,
                 st->n_total, refused, datagrams, st->stopping ? ", stopping" : "");
}

usec_t status_next_usec(usec_t last_usec) {
        return last_usec == 0 ? 0 : last_usec + STATUS_INTERVAL_USEC;
}

/* $NOTIFY_SOCKET as a socket address: a path, or "@name" for an abstract
 * socket. Other forms (vsock:) are not for a service on this host. */
static int notify_address(const char *e, struct notify *n) {
        size_t len = strlen(e);

        if ((e[0] != '/' && e[0] != '@') || len < 2 || len >= sizeof n->address.sun_path)
                return -EAFNOSUPPORT;
        n->address = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(n->address.sun_path, e, len);
        if (e[0] == '@')
                n->address.sun_path[0] = '\0';
        /* A path is NUL-terminated in the address; an abstract name is not. */
        n->address_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len +
                                      (e[0] == '/'));
        return 0;
}

static int notify_connect(struct notify *n) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &n->address, n->address_len) < 0)
                return -errno;
        safe_close(n->fd);
        n->fd = take_fd(&fd);
        return 0;
}

int notify_open(struct notify *ret) {
        struct notify n = NOTIFY_NONE;

        *ret = NOTIFY_NONE;
        const char *e = getenv("NOTIFY_SOCKET");
        if (!e)
                return -ENOENT;
        int r = notify_address(e, &n);
        if (r < 0)
                return r;
        r = notify_connect(&n);
        if (r < 0)
                return r;
        (void) unsetenv("NOTIFY_SOCKET");
        *ret = n;
        return 0;
}

void notify_close(struct notify *n) {
        n->fd = safe_close(n->fd);
}

static int send_message(int fd, const char *text, int attached_fd) {
        /* Aligned as cmsg(3) asks: a char array alone need not be. */
        union {
                struct cmsghdr header;
                char bytes[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = (char *) text, .iov_len = strlen(text) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        memset(&control, 0, sizeof control);    /* the padding is sent too */

        if (attached_fd >= 0) {
                mh.msg_control = control.bytes;
                mh.msg_controllen = sizeof control.bytes;
                struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cmsg), &attached_fd, sizeof(int));
        }
        return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int notify_send(struct notify *n, const char *text, int attached_fd) {
        if (n->fd < 0)
                return 0;
        int r = send_message(n->fd, text, attached_fd);
        /* The socket we connected to is gone (refused once, then not
         * connected): connect again, to the one systemd has made since, if
         * it has. */
        if (r == -ECONNREFUSED || r == -ENOTCONN) {
                int k = notify_connect(n);
                r = k < 0 ? k : send_message(n->fd, text, attached_fd);
        }
        return r;
}

static int send_with_status(struct notify *n, const char *what, const char *status) {
        char text[64 + STATUS_TEXT_MAX];
        snprintf(text, sizeof text, "%sSTATUS=%s", what, status);
        return notify_send(n, text, -1);
}

int notify_ready(struct notify *n, const char *status) {
        return send_with_status(n, "READY=1\n", status);
}

int notify_status(struct notify *n, const char *status) {
        return send_with_status(n, "", status);
}

int notify_stopping(struct notify *n, const char *status) {
        return send_with_status(n, "STOPPING=1\n", status);
}

int notify_watchdog(struct notify *n) {
        return notify_send(n, "WATCHDOG=1", -1);
}

usec_t notify_watchdog_period(void) {
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0)
                return 0;
        return usec / 2;
}

int fd_store_parse_size(const char *text) {
        char *end;

        if (!text || *text < '0' || *text > '9')
                return -EINVAL;
        errno = 0;
        unsigned long n = strtoul(text, &end, 10);
        if (errno != 0 || *end != '\0' || n > INT32_MAX)
                return -EINVAL;
        return (int) n;
}

int notify_fd_store_max_from_env(void) {
        const char *max = getenv("FDSTORE");

        return max ? fd_store_parse_size(max) : -ENOENT;
}

void fd_store_name(char *buf, size_t size, int pid, uint64_t seq) {
        snprintf(buf, size, FD_STORE_NAME_PREFIX "%d-%" PRIu64, pid, seq);
}

bool fd_store_name_is_connection(const char *name) {
        return name && strncmp(name, FD_STORE_NAME_PREFIX, strlen(FD_STORE_NAME_PREFIX)) == 0;
}

uint64_t fd_store_name_seq(const char *name, int pid) {
        char prefix[FD_STORE_NAME_MAX];
        char *end;

        snprintf(prefix, sizeof prefix, FD_STORE_NAME_PREFIX "%d-", pid);
        if (!name || strncmp(name, prefix, strlen(prefix)) != 0)
                return 0;
        const char *digits = name + strlen(prefix);
        if (*digits < '0' || *digits > '9')
                return 0;
        errno = 0;
        unsigned long long seq = strtoull(digits, &end, 10);
        return errno == 0 && *end == '\0' ? (uint64_t) seq : 0;
}

int notify_fd_store(struct notify *n, int conn_fd, const char *name) {
        char text[sizeof "FDSTORE=1\nFDPOLL=0\nFDNAME=" + FD_STORE_NAME_MAX];
        snprintf(text, sizeof text, "FDSTORE=1\nFDPOLL=0\nFDNAME=%s", name);
        return notify_send(n, text, conn_fd);
}

int notify_fd_store_remove(struct notify *n, const char *name) {
        char text[sizeof "FDSTOREREMOVE=1\nFDNAME=" + FD_STORE_NAME_MAX];
        snprintf(text, sizeof text, "FDSTOREREMOVE=1\nFDNAME=%s", name);
        return notify_send(n, text, -1);
}

int notify_barrier(struct notify *n) {
        int pipe_fds[2];

        if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        int r = notify_send(n, "BARRIER=1", pipe_fds[1]);
        safe_close(pipe_fds[1]);
        if (r < 0) {
                safe_close(pipe_fds[0]);
                return r;
        }
        return pipe_fds[0];
}
