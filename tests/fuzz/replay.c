/* Runs a fuzz target over files, without libFuzzer: each seed of the corpus
 * (and every crash ever found, once added there) replays in the unit suite. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        static uint8_t buf[1 << 16];
        FILE *f = fopen(path, "rbe");
        if (!f) {
                perror(path);
                return -1;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned replayed = 0;

        for (int i = 1; i < argc; i++) {
                DIR *dir = opendir(argv[i]);
                if (!dir) {
                        perror(argv[i]);
                        return EXIT_FAILURE;
                }
                for (struct dirent *de; (de = readdir(dir));) {
                        char path[4096];
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
                        if (replay_file(path) < 0) {
                                closedir(dir);
                                return EXIT_FAILURE;
                        }
                        replayed++;
                }
                closedir(dir);
        }
        printf("replayed %u inputs\n", replayed);
        return replayed > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
