/* Acquiring the sockets to serve; see sockets.h. */
#include "sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"

static int getsockopt_int(int fd, int option, int *ret) {
        socklen_t len = sizeof *ret;
        return getsockopt(fd, SOL_SOCKET, option, ret, &len) < 0 ? -errno : 0;
}

int socket_classify(int fd) {
        struct stat st;
        int type, listening;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return SOCKET_NOT_SOCKET;
        int r = getsockopt_int(fd, SO_TYPE, &type);
        if (r < 0)
                return r;
        if (type == SOCK_DGRAM)
                return SOCKET_DATAGRAM;
        if (type != SOCK_STREAM)
                return SOCKET_UNSUPPORTED;
        r = getsockopt_int(fd, SO_ACCEPTCONN, &listening);
        if (r < 0)
                return r;
        return listening ? SOCKET_LISTENER : SOCKET_CONNECTION;
}

static int set_nonblocking(int fd) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static void log_listener(int fd, const char *name) {
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        int type = SOCK_STREAM;

        (void) getsockopt_int(fd, SO_TYPE, &type);
        if (getsockname(fd, (struct sockaddr *) &local, &len) == 0)
                log_listening(fd, name, (struct sockaddr *) &local, len, type == SOCK_DGRAM);
}

/* Adds @fd to @fds (the listeners or the datagram sockets), non-blocking:
 * the loop must never wait in accept() or recvmsg(). */
static int add_socket(int *fds, size_t *n, int fd, const char *name) {
        if (*n >= SOCKETS_MAX)
                return log_error(-EMFILE, "fd %d: more than %d sockets of one kind", fd,
                                 SOCKETS_MAX);
        int r = set_nonblocking(fd);
        if (r < 0)
                return log_error_errno(r, "fd %d: cannot make it non-blocking", fd);
        fds[(*n)++] = fd;
        log_listener(fd, name);
        return 0;
}

static int add_stored(struct socket_set *set, int fd, const char *name) {
        if (strlen(name) >= FD_STORE_NAME_MAX)
                return log_error(-EINVAL, "fd %d: stored connection name too long", fd);
        struct stored_connection *stored = reallocarray(set->stored, set->n_stored + 1,
                                                        sizeof *stored);
        if (!stored)
                return log_error(-ENOMEM, "out of memory");
        set->stored = stored;
        stored[set->n_stored] = (struct stored_connection) { .fd = fd };
        snprintf(stored[set->n_stored].name, FD_STORE_NAME_MAX, "%s", name);
        set->n_stored++;
        return 0;
}

/* One passed fd: a listener joins the set, a connection the fd store kept
 * is resumed, a lone connection (Accept=yes) is echoed in-process;
 * anything else is refused by name. */
static int take_passed_fd(struct socket_set *set, int fd, const char *name, int n_fds) {
        int kind = socket_classify(fd);
        if (kind < 0)
                return log_error_errno(kind, "fd %d (%s): cannot tell what it is", fd, name);
        switch (kind) {
        case SOCKET_LISTENER:
                return add_socket(set->listeners, &set->n_listeners, fd, name);
        case SOCKET_CONNECTION:
                if (fd_store_name_is_connection(name))
                        return add_stored(set, fd, name);
                if (n_fds != 1)
                        return log_error(-EINVAL, "fd %d (%s): a connected socket passed "
                                         "among other sockets", fd, name);
                set->connection = fd;
                return 0;
        case SOCKET_DATAGRAM:
                return add_socket(set->datagrams, &set->n_datagrams, fd, name);
        case SOCKET_NOT_SOCKET:
                return log_error(-ENOTSOCK, "fd %d (%s): not a socket", fd, name);
        default:
                return log_error(-ESOCKTNOSUPPORT, "fd %d (%s): neither a stream nor a "
                                 "datagram socket", fd, name);
        }
}

static int acquire_passed(const struct options *o, struct socket_set *set, int n_fds,
                          char **names) {
        if (o->n_listen > 0 || o->n_listen_datagram > 0)
                log_notice("--listen and --listen-datagram ignored: systemd passed %d "
                           "socket(s)", n_fds);
        for (int i = 0; i < n_fds; i++) {
                int r = take_passed_fd(set, SD_LISTEN_FDS_START + i,
                                       names && names[i] ? names[i] : "unknown", n_fds);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A socket file left by an earlier run is replaced; a live one (something
 * accepts connections on it) or a file of another kind is not. */
static int remove_stale_socket(const struct address *a) {
        struct stat st;
        if (lstat(a->un.sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
                return -errno;
        if (connect(probe, &a->sa, a->len) == 0)
                return -EADDRINUSE;
        return unlink(a->un.sun_path) < 0 ? -errno : 0;
}

/* Returns a socket bound to @a, listening if it is a stream socket, or
 * -errno. Logs nothing: the caller knows how the user spelled the address. */
static int socket_open(const struct address *a, int type) {
        static const int on = 1;
        int v6only = !a->dual_stack;

        if (a->sa.sa_family == AF_UNIX) {
                int r = remove_stale_socket(a);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int fd = socket(a->sa.sa_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (a->sa.sa_family != AF_UNIX &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
                return -errno;
        if (a->sa.sa_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
                return -errno;
        if (bind(fd, &a->sa, a->len) < 0)
                return -errno;
        if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)
                return -errno;
        return take_fd(&fd);
}

static int open_each(const struct listen_option *list, size_t n, int type, int *fds,
                     size_t *n_fds) {
        for (size_t i = 0; i < n; i++) {
                int fd = socket_open(&list[i].address, type);
                if (fd < 0)
                        return log_error_errno(fd, "cannot listen on %s%s", list[i].text,
                                               type == SOCK_DGRAM ? " (UDP)" : "");
                fds[(*n_fds)++] = fd;
                log_listener(fd, NULL);
        }
        return 0;
}

static int acquire_listen_options(const struct options *o, struct socket_set *set) {
        int r = open_each(o->listen, o->n_listen, SOCK_STREAM, set->listeners,
                          &set->n_listeners);
        if (r < 0)
                return r;
        return open_each(o->listen_datagram, o->n_listen_datagram, SOCK_DGRAM, set->datagrams,
                         &set->n_datagrams);
}

static int acquire_inetd(struct socket_set *set) {
        int kind = socket_classify(STDIN_FILENO);
        if (kind != SOCKET_CONNECTION)
                return log_error(-ENOTCONN, "--inetd: standard input is not a connected "
                                 "stream socket");
        log_avoid_fd(STDIN_FILENO);
        set->connection = STDIN_FILENO;
        return 0;
}

static int acquire(const struct options *o, struct socket_set *set) {
        char **names = NULL;

        if (o->inetd)
                return acquire_inetd(set);
        int n_fds = sd_listen_fds_with_names(1, &names);
        if (n_fds < 0)
                return log_error_errno(n_fds, "cannot read the sockets passed by systemd");
        int r = n_fds > 0 ? acquire_passed(o, set, n_fds, names)
                          : acquire_listen_options(o, set);
        for (int i = 0; names && i < n_fds; i++)
                free(names[i]);
        free(names);
        if (r < 0)
                return r;
        if (set->n_listeners == 0 && set->n_datagrams == 0 && set->connection < 0 &&
            set->n_stored == 0)
                return log_error(-ENOENT, "no listening sockets");
        return 0;
}

int sockets_acquire(const struct options *o, struct socket_set *ret) {
        struct socket_set set = SOCKET_SET_EMPTY;
        int r = acquire(o, &set);
        if (r < 0) {
                sockets_close(&set);
                return r;
        }
        *ret = set;
        return 0;
}

void sockets_close_listening(struct socket_set *set) {
        for (size_t i = 0; i < set->n_listeners; i++)
                safe_close(set->listeners[i]);
        for (size_t i = 0; i < set->n_datagrams; i++)
                safe_close(set->datagrams[i]);
        set->n_listeners = set->n_datagrams = 0;
}

void sockets_close(struct socket_set *set) {
        sockets_close_listening(set);
        set->connection = safe_close(set->connection);
        for (size_t i = 0; i < set->n_stored; i++)
                safe_close(set->stored[i].fd);
        free(set->stored);
        set->stored = NULL;
        set->n_stored = 0;
}
