/* call.c: any request of the wire protocol through leeward_call, as JSON.
 *
 *   cc examples/call.c -o call $(pkg-config --cflags --libs leeward)
 *   ./call '{"type": "Status"}' [socket-path]
 *   ./call '{"type": "Execute", "code": "print(input())", "stdin": {"$bytes": "aGkK"}}'
 *
 * Prints the daemon's reply (bytes as {"$bytes": base64}); on failure, the error and
 * its stable code on stderr, exit status 2.
 */
#include <stdio.h>

#include "leeward.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: call REQUEST_JSON [socket-path]\n");
        return 2;
    }
    LeewardHandle *sandbox = leeward_connect(argc > 2 ? argv[2] : NULL);
    if (sandbox == NULL) {
        fprintf(stderr, "call: cannot connect: %s (%s)\n", leeward_last_error(), leeward_last_error_code());
        return 2;
    }
    char *reply = NULL;
    int rc = leeward_call(sandbox, argv[1], &reply);
    if (rc != 0)
        fprintf(stderr, "call: %s (%s)\n", leeward_last_error(), leeward_last_error_code());
    else
        printf("%s\n", reply);
    leeward_string_free(reply);
    leeward_disconnect(sandbox);
    return rc == 0 ? 0 : 2;
}
