'use strict';

/**
 * Stable error codes of the leeward protocol: LEEWARD_E_* of include/leeward.h, the
 * one source (test/abi.test.mjs fails when this table and the header differ).
 */
const codes = Object.freeze({
  FRAME_EMPTY: 'E1001',
  FRAME_TOO_LARGE: 'E1002',
  FRAME_UNDECODABLE: 'E1003', // call(): the request is not JSON
  FRAME_NOT_A_MAP: 'E1004', // call(): the request is not a JSON object
  UNKNOWN_TYPE: 'E1005',
  CONNECTION_CLOSED: 'E1006', // no daemon answered, it went away, or the client is closed
  UNTRUSTED_SOCKET: 'E1007', // the socket is served or held by a uid that is neither yours nor root's
  MISSING_FIELD: 'E2001',
  WRONG_TYPE: 'E2002',
  OUT_OF_RANGE: 'E2003',
  UNKNOWN_FIELD: 'E2004',
  BAD_PATH: 'E2005',
  MOUNT_NOT_ALLOWED: 'E2006',
  MOUNT_NOT_FOUND: 'E2007',
  MOUNT_SYMLINK: 'E2008',
  CODE_OR_ARGV: 'E2009', // exactly one of code and argv
  FEATURE_DISABLED: 'E2010', // turned off by the daemon's config
  SANDBOX_UNAVAILABLE: 'E3001',
  SANDBOX_FAILED: 'E3002',
  SHUTTING_DOWN: 'E3003',
  DAEMON_BUSY: 'E3004', // queue or connection limit full: retryable
  INTERNAL: 'E4001',
  SESSION_NOT_FOUND: 'E5001', // no such session, or not yours
  SESSION_BUSY: 'E5002', // other cells ran past session_queue_secs
  SESSION_ENDED: 'E5003', // the message names the reason
  SESSION_LIMIT: 'E5004', // max_sessions or max_sessions_per_uid
});

/** A failure reported by libleeward or the daemon; `code` is the protocol's stable code. */
class LeewardError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'LeewardError';
    this.code = code;
    // The description without the code prefix.
    this.detail = message;
  }

  /** True when the same request may succeed if sent again after a short wait (E3004, E5002). */
  get retryable() {
    return this.code === codes.DAEMON_BUSY || this.code === codes.SESSION_BUSY;
  }
}

module.exports = { LeewardError, codes };
