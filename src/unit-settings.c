/* Asking the service manager about our unit; see unit-settings.h. */
#include "unit-settings.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "time-util.h"

#define BUS_TIMEOUT_USEC (2 * USEC_PER_SEC)

static int get_fd_store_max(sd_bus *bus, const char *unit, unsigned *ret) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *path = NULL;
        uint32_t max;

        int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path,
                                        "org.freedesktop.systemd1.Service",
                                        "FileDescriptorStoreMax", &error, 'u', &max);
        free(path);
        sd_bus_error_free(&error);
        if (r < 0)
                return r;
        *ret = max;
        return 0;
}

int unit_fd_store_max(unsigned *ret) {
        char *unit = NULL;
        sd_bus *bus = NULL;

        int r = sd_pid_get_unit(0, &unit);
        if (r < 0)
                return r;
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(bus, BUS_TIMEOUT_USEC);
        if (r >= 0)
                r = get_fd_store_max(bus, unit, ret);
        sd_bus_flush_close_unref(bus);
        free(unit);
        return r;
}
