/* Loads libleeward.so the way plugin hosts do (koffi, dlopen with RTLD_LOCAL),
 * without linking it or libpython, and runs a job.
 *
 *   dlopen_test LIBRARY SOCKET      prints the job's stdout, exits with its exit_code
 *   dlopen_test LIBRARY -           no daemon expected: checks for a clean failure
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "leeward.h"

#define LOAD(name)                                                       \
    __typeof__(&name) p_##name = (__typeof__(&name))dlsym(lib, #name);   \
    if (p_##name == NULL) {                                              \
        printf("FAIL dlsym %s: %s\n", #name, dlerror());                 \
        return 1;                                                        \
    }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: dlopen_test LIBRARY SOCKET|-\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        printf("FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    LOAD(leeward_connect)
    LOAD(leeward_execute)
    LOAD(leeward_result_free)
    LOAD(leeward_disconnect)
    LOAD(leeward_last_error)
    LOAD(leeward_last_error_code)

    if (strcmp(argv[2], "-") == 0) {
        LeewardHandle *h = p_leeward_connect("/nonexistent/leeward.sock");
        if (h != NULL || strcmp(p_leeward_last_error_code(), "E1006") != 0) {
            printf("FAIL expected E1006, got [%s] %s\n", p_leeward_last_error_code(), p_leeward_last_error());
            return 1;
        }
        printf("no daemon: %s\n", p_leeward_last_error());
        return 0;
    }

    LeewardHandle *h = p_leeward_connect(argv[2]);
    if (h == NULL) {
        printf("FAIL connect: %s\n", p_leeward_last_error());
        return 1;
    }
    LeewardResult *r = p_leeward_execute(h, "print('dlopen ok')", NULL);
    if (r == NULL) {
        printf("FAIL execute: %s\n", p_leeward_last_error());
        return 1;
    }
    fwrite(r->stdout_data, 1, r->stdout_len, stdout);
    fwrite(r->stderr_data, 1, r->stderr_len, stdout);
    int status = r->exit_code;
    p_leeward_result_free(r);
    p_leeward_disconnect(h);
    return status;
}
