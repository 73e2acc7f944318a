/* Fuzz target for address_parse(): no crash on any input, and whatever it
 * accepts prints back to text that parses to the same socket address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char text[512], printed[ADDRESS_TEXT_MAX];
        struct address a, again;

        if (size >= sizeof text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (address_parse(text, &a) < 0)
                return 0;
        address_format(&a.sa, a.len, printed);
        if (address_parse(printed, &again) < 0 || again.len != a.len ||
            memcmp(&again.sa, &a.sa, a.len) != 0)
                abort();
        return 0;
}
