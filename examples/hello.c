/* hello.c: the smallest leeward client. Runs print('hello') in a sandbox.
 *
 *   cc examples/hello.c -o hello $(pkg-config --cflags --libs leeward)
 *   (PKG_CONFIG_PATH=build/lib/pkgconfig after `python libleeward/build_ffi.py`)
 *   ./hello [socket-path]          # default: $LEEWARD_SOCKET or the per-user socket
 */
#include <stdio.h>

#include "leeward.h"

int main(int argc, char **argv)
{
    LeewardHandle *sandbox = leeward_connect(argc > 1 ? argv[1] : NULL);
    if (sandbox == NULL) {
        fprintf(stderr, "hello: cannot connect: %s (%s)\n", leeward_last_error(), leeward_last_error_code());
        return 2;
    }

    LeewardOptions options = {.timeout_secs = 5.0};  /* 0 fields: the daemon's defaults */
    LeewardResult *result = leeward_execute(sandbox, "print('hello')", &options);
    if (result == NULL) {
        fprintf(stderr, "hello: execute failed: %s (%s)\n", leeward_last_error(), leeward_last_error_code());
        leeward_disconnect(sandbox);
        return 2;
    }

    fwrite(result->stdout_data, 1, result->stdout_len, stdout);
    printf("exit_code=%d duration_us=%llu\n", result->exit_code, (unsigned long long)result->duration_us);
    int status = result->exit_code;
    leeward_result_free(result);
    leeward_disconnect(sandbox);
    return status;
}
