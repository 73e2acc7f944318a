/* fds held in flight in a socket of our own; see stash.h. */
#include "stash.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "fd-util.h"

int stash_open(struct stash *st) {
        *st = (struct stash) { .fds = { -1, -1 } };
        /* A stream socket: the kernel never merges two messages that carry
         * fds, so each one-byte read gives back one message's fds, in order. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, st->fds) < 0)
                return -errno;
        return 0;
}

/* One message: its one byte says how many fds it carries, so that the taker
 * knows how many the kernel dropped, should it drop some. */
static int send_fds(int socket_fd, const int *fds, size_t n) {
        char control[CMSG_SPACE(sizeof(int) * STASH_BATCH_MAX)] = { 0 };
        unsigned char count = (unsigned char) n;
        struct iovec iov = { .iov_base = &count, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);

        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n);
        return sendmsg(socket_fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int stash_put(struct stash *st, const int *fds, size_t n) {
        size_t n_in = 0;

        for (const int *batch = fds; batch < fds + n; batch += STASH_BATCH_MAX) {
                size_t k = (size_t) (fds + n - batch);
                if (k > STASH_BATCH_MAX)
                        k = STASH_BATCH_MAX;
                int r = send_fds(st->fds[1], batch, k);
                if (r < 0)
                        return n_in > 0 ? (int) n_in : r;
                for (size_t i = 0; i < k; i++)
                        safe_close(batch[i]);
                n_in += k;
                st->n += k;
        }
        return (int) n_in;
}

/* Reads the next message's fds into st->taken. Out of fds, the kernel gives
 * back the first ones it could, closes the rest and says so (MSG_CTRUNC):
 * those count as lost, in their places, so that every later fd still comes
 * back as the one put there. */
static int receive_fds(struct stash *st) {
        char control[CMSG_SPACE(sizeof(int) * STASH_BATCH_MAX)];
        unsigned char count;
        struct iovec iov = { .iov_base = &count, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control };
        size_t n_received = 0;

        ssize_t n = recvmsg(st->fds[0], &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;
        if (n == 0 || count == 0 || count > STASH_BATCH_MAX)
                return -EIO;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
        if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
                n_received = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                if (n_received > count)
                        n_received = count;
                memcpy(st->taken, CMSG_DATA(cmsg), sizeof(int) * n_received);
        }
        for (size_t i = n_received; i < count; i++)
                st->taken[i] = -EMFILE;
        st->n_taken = count;
        st->next_taken = 0;
        return 0;
}

int stash_take(struct stash *st) {
        if (st->next_taken == st->n_taken) {
                if (st->n == 0)
                        return -ENOENT;
                int r = receive_fds(st);
                if (r < 0)
                        return r;
        }
        st->n--;
        return st->taken[st->next_taken++];
}

void stash_close(struct stash *st) {
        /* Closing the socket closes the fds still in flight. */
        st->fds[0] = safe_close(st->fds[0]);
        st->fds[1] = safe_close(st->fds[1]);
        for (; st->next_taken < st->n_taken; st->next_taken++)
                if (st->taken[st->next_taken] >= 0)
                        safe_close(st->taken[st->next_taken]);
        st->n = 0;
}
