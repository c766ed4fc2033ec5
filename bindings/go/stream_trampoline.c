/* The C side of CallStream: leeward_call_stream with the exported Go callback, whose
 * `user` is a runtime/cgo.Handle (never a Go pointer kept by C). */
#include <stdint.h>
#include <leeward.h>
#include "_cgo_export.h"

int leeward_go_call_stream(LeewardHandle *handle, const char *request_json, uintptr_t user, char **reply_json)
{
    return leeward_call_stream(handle, request_json, (LeewardEventCallback)leewardGoEvent, (void *)user,
                               reply_json);
}
