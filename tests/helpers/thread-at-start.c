/* Preloaded (LD_PRELOAD) into echod by a test: a constructor that starts a
 * thread, as some preloaded libraries do (tracers, allocators, agents). The
 * thread sleeps and blocks nothing: the kernel may deliver a signal sent to
 * the process to it rather than to the thread that blocks it. */
#include <pthread.h>
#include <unistd.h>

static void *sleep_forever(void *arg) {
        (void) arg;
        for (;;)
                pause();
        return NULL;
}

__attribute__((constructor)) static void start_a_thread(void) {
        pthread_t thread;

        if (pthread_create(&thread, NULL, sleep_forever, NULL) == 0)
                (void) pthread_detach(thread);
}
