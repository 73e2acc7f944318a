/* echo-epoll: the ceiling echod is measured against. One thread, one epoll
 * set, no fork: each connection costs a small struct, and bytes the client
 * cannot take yet. Every read goes into one shared buffer and is written
 * straight back; only what the socket refuses is copied aside, and the
 * connection stops being read until that is sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE (64 * 1024)         /* as echod's child */
#define EVENTS_MAX 256

struct conn {
        int fd;
        bool eof;               /* the client sent FIN: close once nothing is owed */
        char *owed;             /* what the socket did not take yet */
        size_t owed_start, owed_end;
};

static void conn_close(struct conn *c) {
        close(c->fd);
        free(c->owed);
        free(c);
}

static int set_events(int epoll_fd, struct conn *c, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = c };
        return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is owed. Returns 1 when all went, 0 when some is left, -1 on
 * an error. */
static int flush_owed(struct conn *c) {
        while (c->owed_start < c->owed_end) {
                ssize_t n = send(c->fd, c->owed + c->owed_start, c->owed_end - c->owed_start,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -1;
                c->owed_start += (size_t) n;
        }
        free(c->owed);
        c->owed = NULL;
        return 1;
}

/* Writes back @n bytes just read; keeps what the socket refuses. */
static int echo_back(struct conn *c, const char *buf, size_t n) {
        size_t done = 0;
        while (done < n) {
                ssize_t w = send(c->fd, buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0) {
                        if (errno != EAGAIN)
                                return -1;
                        break;
                }
                done += (size_t) w;
        }
        if (done == n)
                return 1;
        c->owed = malloc(n - done);
        if (!c->owed)
                return -1;
        memcpy(c->owed, buf + done, n - done);
        c->owed_start = 0;
        c->owed_end = n - done;
        return 0;
}

/* One readiness event on a connection; returns false once it is closed. */
static bool on_conn_event(int epoll_fd, struct conn *c, uint32_t events, char *buf) {
        if (c->owed) {
                int r = flush_owed(c);
                if (r < 0 || (r > 0 && c->eof))
                        return false;
                if (r == 0)
                        return true;
                return set_events(epoll_fd, c, EPOLLIN) == 0;
        }
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return true;
        ssize_t n = read(c->fd, buf, BUFFER_SIZE);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        if (n == 0)
                return false;   /* FIN, nothing owed: our close sends ours */
        int r = echo_back(c, buf, (size_t) n);
        if (r < 0)
                return false;
        if (r == 0)
                return set_events(epoll_fd, c, EPOLLOUT) == 0;
        return true;
}

static void accept_all(int epoll_fd, int listen_fd) {
        for (int i = 0; i < 64; i++) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return;
                struct conn *c = calloc(1, sizeof *c);
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                if (!c || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        free(c);
                        continue;
                }
                c->fd = fd;
        }
}

static int listen_on(const char *text) {
        static const int on = 1;
        struct sockaddr_in sin = { .sin_family = AF_INET };
        char host[INET_ADDRSTRLEN] = "127.0.0.1";
        const char *colon = strrchr(text, ':');
        if (colon && (size_t) (colon - text) < sizeof host) {
                memcpy(host, text, (size_t) (colon - text));
                host[colon - text] = '\0';
        }
        sin.sin_port = htons((uint16_t) atoi(colon ? colon + 1 : text));
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
            bind(fd, (struct sockaddr *) &sin, sizeof sin) < 0 || listen(fd, SOMAXCONN) < 0)
                return -1;
        return fd;
}

int main(int argc, char *argv[]) {
        static char buf[BUFFER_SIZE];
        struct epoll_event events[EVENTS_MAX];
        struct rlimit rl = { 65536 + 64, 65536 + 64 };

        if (argc != 2) {
                fprintf(stderr, "Usage: echo-epoll [A.B.C.D:]PORT\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        (void) setrlimit(RLIMIT_NOFILE, &rl);   /* best effort: root may raise it */
        int listen_fd = listen_on(argv[1]);
        int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (listen_fd < 0 || epoll_fd < 0 ||
            epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
                perror("echo-epoll");
                return 1;
        }
        for (;;) {
                int n = epoll_wait(epoll_fd, events, EVENTS_MAX, -1);
                for (int i = 0; i < n; i++) {
                        struct conn *c = events[i].data.ptr;
                        if (!c)
                                accept_all(epoll_fd, listen_fd);
                        else if (!on_conn_event(epoll_fd, c, events[i].events, buf))
                                conn_close(c);
                }
        }
}
