/* The daemon's socket as libleeward's Python client reaches it (libleeward/paths.py,
 * libleeward/client.py), for the CLI's hot path: the same default path, the same
 * refusal of a socket directory or a peer that is not ours or root's, the same frames. */
#ifndef LW_CLI_WIRE_H
#define LW_CLI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define LW_MAX_REPLY_FRAME (256u * 1024 * 1024) /* libleeward.client.MAX_RESPONSE_FRAME */
#define LW_MAX_REQUEST_FRAME (16u * 1024 * 1024) /* the daemon's default frame limit */

/* $LEEWARD_SOCKET, else /run/leeward/leeward.sock for root, else
 * $XDG_RUNTIME_DIR/leeward.sock, else /tmp/leeward-UID/leeward.sock. */
void lw_default_socket(char *out, size_t size);

/* A connected socket to a daemon run by us or root, or -1 with errno set and a reason
 * in `why` (nothing listens, an untrusted directory or peer). */
int lw_connect(const char *path, char *why, size_t why_size);

/* Sends one frame (4-byte big-endian length + body); 0 on success. */
int lw_send_frame(int fd, const uint8_t *body, size_t len);

/* Receives one frame into a malloc()ed buffer; 0 on success, -1 on failure or EOF
 * (errno EPROTO for a length of 0 or over LW_MAX_REPLY_FRAME). */
int lw_recv_frame(int fd, uint8_t **body, size_t *len);

#endif
