/* What echo.service's ExecStop= says of a stop, as echod reads it: only a
 * restart job keeps connections; whatever is missing or unclear reads as a
 * plain stop; the file explains one stop only. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/stop-info.h"
#include "unit.h"

static char dir[PATH_MAX];

static void make_dir(void) {
        snprintf(dir, sizeof dir, "/tmp/echod-test-stop-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void write_file(const char *text) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/" STOP_INFO_FILE, dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
}

static void remove_dir(void) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/" STOP_INFO_FILE, dir);
        (void) unlink(path);
        ck_assert_int_eq(rmdir(dir), 0);
}

START_TEST(a_restart_job_with_the_store_size) {
        struct stop_info info;

        make_dir();
        write_file("JOB=restart\nFDSTORE=10\n");
        ck_assert_int_eq(stop_info_read(dir, &info), 0);
        ck_assert(info.restart);
        ck_assert_int_eq(info.fd_store_max, 10);
        /* read once: the next stop is not explained by this one's file */
        ck_assert_int_eq(stop_info_read(dir, &info), -ENOENT);
        ck_assert(!info.restart);
        ck_assert_int_eq(info.fd_store_max, -1);
        remove_dir();
}
END_TEST

START_TEST(anything_but_a_restart_is_a_plain_stop) {
        static const char *const texts[] = {
                "JOB=stop\nFDSTORE=4096\n",
                "JOB=\nFDSTORE=4096\n",         /* no job: systemctl kill, a crash */
                "JOB=restartx\n",
                "FDSTORE=4096\n",
        };
        struct stop_info info;

        make_dir();
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                write_file(texts[i]);
                ck_assert_int_eq(stop_info_read(dir, &info), 0);
                ck_assert(!info.restart);
        }
        remove_dir();
}
END_TEST

START_TEST(an_unclear_file_reads_as_a_plain_stop) {
        static const char *const texts[] = {
                "JOB=restart\nFDSTORE=ten\n",
                "JOB=restart\nFDSTORE=-1\n",
                "JOB=restart\nFDSTORE=99999999999\n",
                "JOB=restart\ngarbage\n",
        };
        struct stop_info info;

        make_dir();
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                write_file(texts[i]);
                ck_assert_int_eq(stop_info_read(dir, &info), -EBADMSG);
                ck_assert(!info.restart);
                ck_assert_int_eq(info.fd_store_max, -1);
        }
        remove_dir();
}
END_TEST

START_TEST(unknown_keys_and_an_empty_size_are_skipped) {
        struct stop_info info;
        char list[PATH_MAX + 16];

        make_dir();
        write_file("SOMETHING=new\nJOB=restart\nFDSTORE=\n");
        /* $RUNTIME_DIRECTORY with more than one directory: the first */
        snprintf(list, sizeof list, "%s:/nonexistent", dir);
        ck_assert_int_eq(stop_info_read(list, &info), 0);
        ck_assert(info.restart);
        ck_assert_int_eq(info.fd_store_max, -1);
        ck_assert_int_eq(stop_info_read(NULL, &info), -ENOENT);
        ck_assert_int_eq(stop_info_read("", &info), -ENOENT);
        remove_dir();
}
END_TEST

int main(void) {
        Suite *s = suite_create("stop-info");
        TCase *tc = tcase_create("read");
        tcase_add_test(tc, a_restart_job_with_the_store_size);
        tcase_add_test(tc, anything_but_a_restart_is_a_plain_stop);
        tcase_add_test(tc, an_unclear_file_reads_as_a_plain_stop);
        tcase_add_test(tc, unknown_keys_and_an_empty_size_are_skipped);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
