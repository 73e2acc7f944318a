/* Records between echod and its acceptor; see control.h. */
#include "control.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "fd-util.h"

int control_queue_add(struct control_queue *q, const struct control_record *record, int fd) {
        if (q->n == CONTROL_QUEUE_MAX)
                return -ENOBUFS;
        q->records[q->n] = *record;
        q->records[q->n].has_fd = fd >= 0;
        q->n++;
        if (fd >= 0)
                q->fds[q->n_fds++] = fd;
        return 0;
}

void control_queue_clear(struct control_queue *q) {
        for (size_t i = 0; i < q->n_fds; i++)
                safe_close(q->fds[i]);
        q->n = q->n_fds = 0;
}

/* Ancillary data for the most fds a message carries, aligned as cmsg(3)
 * asks: a char array alone need not be, on every architecture. */
union control_buffer {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int) * CONTROL_BATCH_MAX)];
};

/* Sends the first @n records of @q, with their fds, the first @n_fds. */
static int send_records(int socket_fd, const struct control_queue *q, size_t n, size_t n_fds) {
        union control_buffer control;
        struct iovec iov = { .iov_base = (void *) q->records, .iov_len = sizeof q->records[0] * n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        memset(&control, 0, sizeof control);    /* the padding is sent too */

        if (n_fds > 0) {
                mh.msg_control = control.bytes;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cmsg), q->fds, sizeof(int) * n_fds);
        }
        return sendmsg(socket_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Drops the first @n records and @n_fds fds of @q, closing those fds. */
static void drop_front(struct control_queue *q, size_t n, size_t n_fds) {
        for (size_t i = 0; i < n_fds; i++)
                safe_close(q->fds[i]);
        memmove(q->records, q->records + n, sizeof q->records[0] * (q->n - n));
        memmove(q->fds, q->fds + n_fds, sizeof q->fds[0] * (q->n_fds - n_fds));
        q->n -= n;
        q->n_fds -= n_fds;
}

int control_queue_send(int socket_fd, struct control_queue *q) {
        while (q->n > 0) {
                size_t n = q->n, n_fds = 0;
                if (n > CONTROL_BATCH_MAX)
                        n = CONTROL_BATCH_MAX;
                for (size_t i = 0; i < n; i++)
                        n_fds += q->records[i].has_fd;
                int r = send_records(socket_fd, q, n, n_fds);
                if (r < 0)
                        return r;
                drop_front(q, n, n_fds);
        }
        return 0;
}

/* The fds a message brought, into @fds[0..@n_wanted): those the kernel could
 * not give back (out of fds: it says so with MSG_CTRUNC, and closed them)
 * are -EMFILE, at the end, where they were. */
static void take_fds(struct msghdr *mh, int *fds, size_t n_wanted) {
        size_t n = 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                        if (n < n_wanted)
                                fds[n++] = fd;
                        else
                                safe_close(fd);         /* more than the records said */
                }
        }
        for (size_t i = n; i < n_wanted; i++)
                fds[i] = -EMFILE;
}

int control_receive(int socket_fd, struct control_record *records, int *fds) {
        union control_buffer control;
        struct iovec iov = { .iov_base = records,
                             .iov_len = sizeof records[0] * CONTROL_BATCH_MAX };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes };
        size_t n_wanted = 0;

        ssize_t n = recvmsg(socket_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return n == 0 ? 0 : -errno;
        size_t n_records = (size_t) n / sizeof records[0];
        bool malformed = (size_t) n % sizeof records[0] != 0 || (mh.msg_flags & MSG_TRUNC);
        for (size_t i = 0; i < n_records; i++)
                n_wanted += records[i].has_fd;
        take_fds(&mh, fds, n_wanted);
        if (malformed) {
                for (size_t i = 0; i < n_wanted; i++)
                        if (fds[i] >= 0)
                                safe_close(fds[i]);
                return -EPROTO;
        }
        return (int) n_records;
}
