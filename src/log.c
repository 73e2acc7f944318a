/* Logging to the journal or stderr; see log.h. The level and the target are
 * the only globals in echod: every function may log, and passing a logger
 * around would add an argument to all of them. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "address.h"
#include "message-ids.h"

static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_to_journal;
static bool log_to_stderr = true;

static const int syslog_priority[] = {
        [LOG_LEVEL_ERR] = LOG_ERR,
        [LOG_LEVEL_WARNING] = LOG_WARNING,
        [LOG_LEVEL_NOTICE] = LOG_NOTICE,
        [LOG_LEVEL_INFO] = LOG_INFO,
        [LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

/* systemd sets JOURNAL_STREAM=DEV:INODE when it connects stderr to the
 * journal; compare with fd 2 itself, since a redirected stderr may have
 * inherited the variable without the stream. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_init(enum log_level max_level) {
        log_max_level = max_level;
        log_to_journal = stderr_is_journal();
        log_to_stderr = !log_to_journal;
}

void log_avoid_fd(int fd) {
        struct stat a, b;

        if (fstat(fd, &a) < 0 || fstat(STDERR_FILENO, &b) < 0)
                return;
        if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                log_to_stderr = false;
                log_to_journal = true;
        }
}

bool log_enabled(enum log_level level) {
        return level <= log_max_level;
}

/* A client as logs show it: unmapped (see address_unmap_ipv4()) and in
 * text, whole ("A.B.C.D:PORT") and host alone (REMOTE_ADDR=). */
struct peer {
        struct sockaddr_storage address;
        socklen_t len;
        unsigned port;          /* 0 for AF_UNIX */
        char text[ADDRESS_TEXT_MAX];
        char host[ADDRESS_TEXT_MAX];
};

static const struct peer *peer_describe(const struct sockaddr *sa, socklen_t len,
                                        struct peer *ret) {
        ret->len = address_unmap_ipv4(sa, len, &ret->address);
        const struct sockaddr *unmapped = (const struct sockaddr *) &ret->address;
        ret->port = address_port(unmapped);
        address_format(unmapped, ret->len, ret->text);
        address_format_host(unmapped, ret->len, ret->host);
        return ret;
}

/* The structured fields an event may carry; unset ones are left out. */
struct log_fields {
        const struct peer *peer;
        pid_t child_pid;        /* 0: none */
        bool has_bytes;
        uint64_t bytes;
        uint64_t duration_usec;
};

#define FIELD_MAX 11

/* @message_field is "MESSAGE=text", ready to be sent as it is. */
static void send_to_journal(enum log_level level, const char *message_id,
                            const struct log_fields *f, const char *message_field) {
        char priority[16], id[64], addr[ADDRESS_TEXT_MAX + 16], port[32], pid[32];
        char bytes[48], duration[48];
        struct iovec iov[FIELD_MAX];
        size_t n = 0;

#define ADD(buf, ...) \
        do { \
                snprintf(buf, sizeof buf, __VA_ARGS__); \
                iov[n++] = (struct iovec) { .iov_base = buf, .iov_len = strlen(buf) }; \
        } while (0)

        static const char identifier[] = "SYSLOG_IDENTIFIER=echod";

        iov[n++] = (struct iovec) { .iov_base = (char *) message_field,
                                    .iov_len = strlen(message_field) };
        iov[n++] = (struct iovec) { .iov_base = (char *) identifier,
                                    .iov_len = sizeof identifier - 1 };
        ADD(priority, "PRIORITY=%d", syslog_priority[level]);
        if (message_id)
                ADD(id, "MESSAGE_ID=%s", message_id);
        if (f && f->peer) {
                ADD(addr, "REMOTE_ADDR=%s", f->peer->host);
                if (f->peer->address.ss_family != AF_UNIX)
                        ADD(port, "REMOTE_PORT=%u", f->peer->port);
        }
        if (f && f->child_pid > 0)
                ADD(pid, "CHILD_PID=%d", (int) f->child_pid);
        if (f && f->has_bytes) {
                ADD(bytes, "BYTES=%" PRIu64, f->bytes);
                ADD(duration, "DURATION_USEC=%" PRIu64, f->duration_usec);
        }
#undef ADD
        (void) sd_journal_sendv(iov, (int) n);
}

static void log_fullv(enum log_level level, const char *message_id, const struct log_fields *f,
                      int r, const char *fmt, va_list ap) {
        static const char prefix[] = "MESSAGE=";
        char field[sizeof prefix - 1 + 1024];
        char *message = field + sizeof prefix - 1;
        size_t size = sizeof field - (sizeof prefix - 1);
        int len;

        if (!log_enabled(level))
                return;
        memcpy(field, prefix, sizeof prefix - 1);
        len = vsnprintf(message, size, fmt, ap);
        if (r < 0 && len >= 0 && (size_t) len < size)
                snprintf(message + len, size - (size_t) len, ": %s", strerror(-r));

        if (log_to_journal)
                send_to_journal(level, message_id, f, field);
        if (log_to_stderr)
                fprintf(stderr, "echod: %s\n", message);
}

static void log_full(enum log_level level, const char *message_id, const struct log_fields *f,
                     int r, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void log_full(enum log_level level, const char *message_id, const struct log_fields *f,
                     int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_fullv(level, message_id, f, r, fmt, ap);
        va_end(ap);
}

int log_error(int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_fullv(LOG_LEVEL_ERR, NULL, NULL, 0, fmt, ap);
        va_end(ap);
        return r;
}

int log_error_errno(int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_fullv(LOG_LEVEL_ERR, NULL, NULL, r, fmt, ap);
        va_end(ap);
        return r;
}

int log_warning_errno(int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_fullv(LOG_LEVEL_WARNING, NULL, NULL, r, fmt, ap);
        va_end(ap);
        return r;
}

#define DEFINE_LOG_LEVEL(name, level) \
        void name(const char *fmt, ...) { \
                va_list ap; \
                va_start(ap, fmt); \
                log_fullv(level, NULL, NULL, 0, fmt, ap); \
                va_end(ap); \
        }

DEFINE_LOG_LEVEL(log_notice, LOG_LEVEL_NOTICE)
DEFINE_LOG_LEVEL(log_info, LOG_LEVEL_INFO)

/* ", 12 similar messages suppressed" after a rate-limited one, or nothing. */
static const char *suppressed_text(unsigned suppressed, char *buf, size_t size) {
        if (suppressed == 0)
                return "";
        snprintf(buf, size, " (%u similar messages suppressed)", suppressed);
        return buf;
}

void log_listening(int fd, const char *name, const struct sockaddr *local, socklen_t len,
                   bool datagram) {
        char text[ADDRESS_TEXT_MAX];
        log_full(LOG_LEVEL_INFO, MESSAGE_ID_LISTENING, NULL, 0, "listening on %s (%s, fd %d%s%s)",
                 address_format(local, len, text), datagram ? "datagram" : "stream", fd,
                 name ? ", " : "", name ? name : "");
}

void log_connection_opened(const struct sockaddr *peer, socklen_t len, pid_t child_pid) {
        if (!log_enabled(LOG_LEVEL_DEBUG))
                return;         /* the hot path: skip the formatting */
        struct peer p;
        struct log_fields f = { .peer = peer_describe(peer, len, &p), .child_pid = child_pid };
        log_full(LOG_LEVEL_DEBUG, MESSAGE_ID_CONNECTION_OPENED, &f, 0,
                 "connection from %s, child %d", p.text, (int) child_pid);
}

void log_connection_closed(const struct sockaddr *peer, socklen_t len, uint64_t bytes,
                           uint64_t duration_usec, int r, pid_t child_pid) {
        if (!log_enabled(LOG_LEVEL_DEBUG))
                return;
        struct peer p;
        struct log_fields f = { .peer = peer_describe(peer, len, &p), .child_pid = child_pid,
                                .has_bytes = true, .bytes = bytes,
                                .duration_usec = duration_usec };
        log_full(LOG_LEVEL_DEBUG, MESSAGE_ID_CONNECTION_CLOSED, &f, r,
                 "connection from %s closed%s after %" PRIu64 " bytes, %" PRIu64 " ms", p.text,
                 r == -ETIMEDOUT ? " (idle timeout)" : "", bytes, duration_usec / 1000);
}

void log_child_killed(pid_t child_pid, int signo, unsigned suppressed) {
        char more[64];
        struct log_fields f = { .child_pid = child_pid };
        log_full(LOG_LEVEL_NOTICE, MESSAGE_ID_CHILD_KILLED, &f, 0,
                 "child %d killed by signal %s%s", (int) child_pid, sigabbrev_np(signo),
                 suppressed_text(suppressed, more, sizeof more));
}

void log_accept_failed(int r, unsigned backoff_ms, unsigned suppressed) {
        char more[64];
        log_full(LOG_LEVEL_WARNING, MESSAGE_ID_ACCEPT_FAILED, NULL, 0,
                 "accept: %s, pausing %u ms%s", strerror(-r), backoff_ms,
                 suppressed_text(suppressed, more, sizeof more));
}

void log_fork_failed(int r, unsigned backoff_ms, unsigned suppressed) {
        char more[64];
        log_full(LOG_LEVEL_WARNING, MESSAGE_ID_FORK_FAILED, NULL, 0,
                 "fork: %s, connection kept waiting, retrying in %u ms%s", strerror(-r),
                 backoff_ms, suppressed_text(suppressed, more, sizeof more));
}

void log_limit_reached(unsigned max_connections, unsigned suppressed) {
        char more[64];
        log_full(LOG_LEVEL_NOTICE, MESSAGE_ID_LIMIT_REACHED, NULL, 0,
                 "%u connections active, the limit: new clients wait in the backlog%s",
                 max_connections, suppressed_text(suppressed, more, sizeof more));
}

void log_source_limit_reached(const struct sockaddr *peer, socklen_t len, unsigned limit,
                              unsigned suppressed) {
        char more[64];
        struct peer p;
        struct log_fields f = { .peer = peer_describe(peer, len, &p) };
        log_full(LOG_LEVEL_NOTICE, MESSAGE_ID_SOURCE_LIMIT, &f, 0,
                 "%s already holds %u connection%s, the per-source limit: connection closed%s",
                 p.host, limit, limit == 1 ? "" : "s",
                 suppressed_text(suppressed, more, sizeof more));
}

void log_datagram_dropped(const struct sockaddr *source, socklen_t len, const char *reason,
                          unsigned suppressed) {
        char more[64];
        struct peer p;
        struct log_fields f = { .peer = peer_describe(source, len, &p) };
        log_full(LOG_LEVEL_NOTICE, MESSAGE_ID_DATAGRAM_DROPPED, &f, 0,
                 "datagram from %s dropped: %s%s", p.text, reason,
                 suppressed_text(suppressed, more, sizeof more));
}

void log_fd_store_full(unsigned fd_store_max, unsigned n_not_kept, unsigned suppressed) {
        char more[64];
        log_full(LOG_LEVEL_NOTICE, MESSAGE_ID_FD_STORE_FULL, NULL, 0,
                 "fd store full (FileDescriptorStoreMax=%u): %u connection%s not kept for a "
                 "restart for now%s", fd_store_max, n_not_kept, n_not_kept == 1 ? "" : "s",
                 suppressed_text(suppressed, more, sizeof more));
}

void log_fd_store_failed(int r, unsigned n_not_kept, unsigned suppressed) {
        char more[64];
        log_full(LOG_LEVEL_WARNING, NULL, NULL, 0,
                 "cannot put %u connection%s in the fd store: %s, trying again%s", n_not_kept,
                 n_not_kept == 1 ? "" : "s", strerror(-r),
                 suppressed_text(suppressed, more, sizeof more));
}

void log_copy_lost(unsigned suppressed) {
        char more[64];
        log_full(LOG_LEVEL_WARNING, NULL, NULL, 0,
                 "out of file descriptors: echod's copy of a new connection was lost, so it "
                 "will not be kept for a restart%s", suppressed_text(suppressed, more, sizeof more));
}

void log_acceptor_died(int status, unsigned n_active, unsigned restart_ms) {
        char how[64];
        if (WIFSIGNALED(status))
                snprintf(how, sizeof how, "was killed by signal %s", sigabbrev_np(WTERMSIG(status)));
        else
                snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
        log_full(LOG_LEVEL_WARNING, MESSAGE_ID_ACCEPTOR_DIED, NULL, 0,
                 "the acceptor %s: its %u connection%s go%s on, a new one starts in %u ms",
                 how, n_active, n_active == 1 ? "" : "s", n_active == 1 ? "es" : "", restart_ms);
}

void log_acceptor_hung(pid_t pid, uint64_t silent_ms) {
        struct log_fields f = { .child_pid = pid };
        log_full(LOG_LEVEL_WARNING, MESSAGE_ID_ACCEPTOR_HUNG, &f, 0,
                 "the acceptor (%d) has not answered for %" PRIu64 " ms: killing it",
                 (int) pid, silent_ms);
}

void log_stopping(unsigned n_active, unsigned timeout_sec, const char *how) {
        log_full(LOG_LEVEL_INFO, MESSAGE_ID_STOPPING, NULL, 0,
                 "stopping: %u connection%s to finish within %u s%s%s", n_active,
                 n_active == 1 ? "" : "s", timeout_sec, how ? "; " : "", how ? how : "");
}

void log_stopped(uint64_t n_total, unsigned n_killed) {
        log_full(LOG_LEVEL_INFO, MESSAGE_ID_STOPPED, NULL, 0,
                 "stopped after %" PRIu64 " connection%s, %u killed at the shutdown timeout",
                 n_total, n_total == 1 ? "" : "s", n_killed);
}
