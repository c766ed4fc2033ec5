'use strict';
// The koffi binding of include/leeward.h, loaded once per thread (the main
// thread and each async worker thread load it separately; the library itself
// is mapped once per process).
//
// libleeward keeps the last error per OS thread: every function here reads it
// synchronously, right after the failing call, on the thread that made it.

const fs = require('node:fs');
const path = require('node:path');
const { LeewardError, codes } = require('./errors');

/** Where libleeward.so is looked for: $LEEWARD_LIBRARY, else this checkout's build/lib. */
function libraryPath() {
  if (process.env.LEEWARD_LIBRARY) return process.env.LEEWARD_LIBRARY;
  const inRepo = path.resolve(__dirname, '..', '..', '..', 'build', 'lib', 'libleeward.so');
  // Not built in this checkout: let the dynamic loader search (LD_LIBRARY_PATH, ld.so.cache).
  return fs.existsSync(inRepo) ? inRepo : 'libleeward.so';
}

let loaded = null;

function load(file = libraryPath()) {
  if (loaded && loaded.file === file) return loaded;
  let koffi;
  let lib;
  try {
    koffi = require('koffi');
    lib = koffi.load(file);
  } catch (err) {
    throw new LeewardError(codes.INTERNAL, `cannot load ${file}: ${err.message}`);
  }
  // Anonymous types: no clash in koffi's per-thread registry of type names,
  // whatever else this thread declared.
  const Handle = koffi.pointer(koffi.opaque());
  const Mount = koffi.struct({ host: 'const char *', sandbox: 'const char *', read_only: 'int' });
  const Options = koffi.struct({
    timeout_secs: 'double',
    memory_limit: 'uint64_t',
    mounts: koffi.pointer(Mount),
    mounts_len: 'size_t',
  });
  const Result = koffi.struct({
    exit_code: 'int',
    stdout_data: 'void *',
    stdout_len: 'size_t',
    stderr_data: 'void *',
    stderr_len: 'size_t',
    duration_us: 'uint64_t',
    memory_peak: 'uint64_t',
    cpu_time_us: 'uint64_t',
    timed_out: 'int',
    oom_killed: 'int',
    stdout_truncated: 'int',
    stderr_truncated: 'int',
    details_json: 'void *',
  });
  const ResultPtr = koffi.pointer(Result);
  const EventCallback = koffi.proto('void (const char *event_json, void *user)');
  const fn = {
    connect: lib.func('leeward_connect', Handle, ['const char *']),
    execute: lib.func('leeward_execute', ResultPtr, [Handle, 'const char *', koffi.pointer(Options)]),
    resultFree: lib.func('leeward_result_free', 'void', [ResultPtr]),
    disconnect: lib.func('leeward_disconnect', 'void', [Handle]),
    lastError: lib.func('leeward_last_error', 'const char *', []),
    lastErrorCode: lib.func('leeward_last_error_code', 'const char *', []),
    version: lib.func('leeward_version', 'const char *', []),
    ping: lib.func('leeward_ping', 'int', [Handle]),
    statusJson: lib.func('leeward_status_json', 'void *', [Handle]),
    stringFree: lib.func('leeward_string_free', 'void', ['void *']),
    call: lib.func('leeward_call', 'int', [Handle, 'const char *', koffi.out(koffi.pointer('void *'))]),
    callStream: lib.func('leeward_call_stream', 'int',
      [Handle, 'const char *', koffi.pointer(EventCallback), 'void *', koffi.out(koffi.pointer('void *'))]),
  };
  // The struct layouts are checked against include/leeward.h by test/abi.test.mjs.
  loaded = { file, koffi, fn, Result, types: { Mount, Options, Result } };
  return loaded;
}

/** The calling thread's last libleeward error, as a LeewardError. */
function lastError(native) {
  const code = native.fn.lastErrorCode() || codes.INTERNAL;
  const message = native.fn.lastError() || 'unknown error';
  return new LeewardError(code, message);
}

function hasNul(s) {
  return s.indexOf('\0') !== -1;
}

function checkString(value, what) {
  if (typeof value !== 'string') throw new LeewardError(codes.WRONG_TYPE, `${what} must be a string`);
  if (hasNul(value)) throw new LeewardError(codes.WRONG_TYPE, `${what} contains a NUL character`);
  return value;
}

const OPTION_KEYS = new Set(['timeoutSecs', 'memoryLimit', 'mounts']);
const MOUNT_KEYS = new Set(['host', 'sandbox', 'readOnly']);

/**
 * Validates the JS options and turns them into the C struct's shape (or null).
 * Only shapes are checked here; ranges are the daemon's to judge (E2003).
 */
function cOptions(opts) {
  if (opts === undefined || opts === null) return null;
  if (typeof opts !== 'object' || Array.isArray(opts)) {
    throw new LeewardError(codes.WRONG_TYPE, 'options must be an object');
  }
  for (const key of Object.keys(opts)) {
    if (!OPTION_KEYS.has(key)) {
      throw new LeewardError(codes.UNKNOWN_FIELD, `unknown option '${key}' (expected timeoutSecs, memoryLimit, mounts)`);
    }
  }
  const out = { timeout_secs: 0, memory_limit: 0, mounts: null, mounts_len: 0 };
  if (opts.timeoutSecs !== undefined) {
    if (typeof opts.timeoutSecs !== 'number') throw new LeewardError(codes.WRONG_TYPE, 'timeoutSecs must be a number');
    out.timeout_secs = opts.timeoutSecs;
  }
  if (opts.memoryLimit !== undefined) {
    const m = opts.memoryLimit;
    const ok = typeof m === 'bigint' ? m >= 0n && m < 2n ** 64n : Number.isInteger(m) && m >= 0 && m < 2 ** 64;
    if (!ok) throw new LeewardError(codes.WRONG_TYPE, 'memoryLimit must be a non-negative integer (bytes)');
    out.memory_limit = m;
  }
  if (opts.mounts !== undefined) {
    if (!Array.isArray(opts.mounts)) throw new LeewardError(codes.WRONG_TYPE, 'mounts must be an array');
    out.mounts = opts.mounts.map((m, i) => {
      if (typeof m !== 'object' || m === null) throw new LeewardError(codes.WRONG_TYPE, `mounts[${i}] must be an object`);
      for (const key of Object.keys(m)) {
        if (!MOUNT_KEYS.has(key)) throw new LeewardError(codes.UNKNOWN_FIELD, `unknown field 'mounts[${i}].${key}'`);
      }
      if (m.host === undefined || m.sandbox === undefined) {
        throw new LeewardError(codes.MISSING_FIELD, `mounts[${i}] needs host and sandbox`);
      }
      return {
        host: checkString(m.host, `mounts[${i}].host`),
        sandbox: checkString(m.sandbox, `mounts[${i}].sandbox`),
        // Read-only unless asked otherwise, like the wire protocol.
        read_only: m.readOnly === undefined || m.readOnly ? 1 : 0,
      };
    });
    out.mounts_len = out.mounts.length;
    if (out.mounts_len === 0) out.mounts = null;
  }
  return out;
}

function toNumber(v) {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** A copy of `len` bytes at `ptr`, in its own ArrayBuffer (so it can be transferred). */
function copyBytes(koffi, ptr, len) {
  const out = new Uint8Array(len);
  if (len > 0) out.set(new Uint8Array(koffi.view(ptr, len)));
  return out;
}

function decodeResult(native, ptr) {
  const { koffi, Result } = native;
  const r = koffi.decode(ptr, Result);
  const stdoutLen = toNumber(r.stdout_len);
  const stderrLen = toNumber(r.stderr_len);
  return {
    exitCode: r.exit_code,
    stdoutBytes: copyBytes(koffi, r.stdout_data, stdoutLen),
    stderrBytes: copyBytes(koffi, r.stderr_data, stderrLen),
    durationMs: toNumber(r.duration_us) / 1000,
    memoryPeak: toNumber(r.memory_peak),
    cpuTimeUs: toNumber(r.cpu_time_us),
    timedOut: r.timed_out !== 0,
    oomKilled: r.oom_killed !== 0,
    stdoutTruncated: r.stdout_truncated !== 0,
    stderrTruncated: r.stderr_truncated !== 0,
    detailsJson: koffi.decode(r.details_json, 'char', -1),
  };
}

/** Opens a handle; throws LeewardError (E1006 when no daemon answers). */
function connect(native, socketPath) {
  const handle = native.fn.connect(socketPath === undefined ? null : socketPath);
  if (!handle) throw lastError(native);
  return handle;
}

/**
 * Runs one job synchronously on the calling thread. Returns the raw result:
 * stdout/stderr as Uint8Arrays, details as JSON text (see index.js for the public shape).
 */
function execute(native, handle, code, copts) {
  const ptr = native.fn.execute(handle, code, copts);
  if (!ptr) throw lastError(native);
  try {
    return decodeResult(native, ptr);
  } finally {
    native.fn.resultFree(ptr);
  }
}

function ping(native, handle) {
  if (native.fn.ping(handle) !== 0) throw lastError(native);
}

function status(native, handle) {
  const ptr = native.fn.statusJson(handle);
  if (!ptr) throw lastError(native);
  try {
    return native.koffi.decode(ptr, 'char', -1);
  } finally {
    native.fn.stringFree(ptr);
  }
}

/**
 * Sends one request (JSON text) through leeward_call on the calling thread; returns
 * the reply as JSON text. An error reply throws LeewardError with the daemon's code.
 */
function call(native, handle, requestJson) {
  const reply = [null];
  if (native.fn.call(handle, requestJson, reply) !== 0) throw lastError(native);
  return takeReply(native, reply[0]);
}

/**
 * call() through leeward_call_stream: onEvent(eventJson) runs on the calling thread for
 * each Event frame before the reply (valid during the call only, as koffi's callback).
 */
function callStream(native, handle, requestJson, onEvent) {
  const reply = [null];
  if (native.fn.callStream(handle, requestJson, (eventJson) => onEvent(eventJson), null, reply) !== 0) {
    throw lastError(native);
  }
  return takeReply(native, reply[0]);
}

function takeReply(native, ptr) {
  try {
    return native.koffi.decode(ptr, 'char', -1);
  } finally {
    native.fn.stringFree(ptr);
  }
}

module.exports = { libraryPath, load, connect, execute, ping, status, call, callStream, cOptions, checkString };
