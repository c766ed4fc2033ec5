import { EventEmitter } from 'node:events';

/** Stable error codes of the leeward protocol (LEEWARD_E_* of include/leeward.h). */
export declare const codes: Readonly<{
  FRAME_EMPTY: 'E1001';
  FRAME_TOO_LARGE: 'E1002';
  /** call(): the request is not JSON. */
  FRAME_UNDECODABLE: 'E1003';
  /** call(): the request is not a JSON object. */
  FRAME_NOT_A_MAP: 'E1004';
  UNKNOWN_TYPE: 'E1005';
  /** No daemon answered, it went away during the call, or the client is closed. */
  CONNECTION_CLOSED: 'E1006';
  /** The socket is served or held by a uid that is neither yours nor root's. */
  UNTRUSTED_SOCKET: 'E1007';
  MISSING_FIELD: 'E2001';
  WRONG_TYPE: 'E2002';
  OUT_OF_RANGE: 'E2003';
  UNKNOWN_FIELD: 'E2004';
  BAD_PATH: 'E2005';
  MOUNT_NOT_ALLOWED: 'E2006';
  MOUNT_NOT_FOUND: 'E2007';
  MOUNT_SYMLINK: 'E2008';
  /** Exactly one of code and argv. */
  CODE_OR_ARGV: 'E2009';
  /** The feature is turned off by the daemon's config. */
  FEATURE_DISABLED: 'E2010';
  SANDBOX_UNAVAILABLE: 'E3001';
  SANDBOX_FAILED: 'E3002';
  SHUTTING_DOWN: 'E3003';
  /** The daemon's queue or connection limit is full: retryable. */
  DAEMON_BUSY: 'E3004';
  INTERNAL: 'E4001';
  /** No such session, or not yours (the two are not told apart). */
  SESSION_NOT_FOUND: 'E5001';
  /** The session's other cells ran past session_queue_secs: retryable. */
  SESSION_BUSY: 'E5002';
  /** The session has ended; the message names the reason (closed, idle_expired, timeout, oom, ...). */
  SESSION_ENDED: 'E5003';
  /** max_sessions or max_sessions_per_uid reached. */
  SESSION_LIMIT: 'E5004';
}>;

/** A failure reported by libleeward or the daemon. */
export declare class LeewardError extends Error {
  constructor(code: string, message: string);
  readonly name: 'LeewardError';
  /** The protocol's stable code, e.g. "E1006" (no daemon) or "E2003" (out of range). */
  readonly code: string;
  /** The description, without the "Exxxx: " prefix that `message` has. */
  readonly detail: string;
  /** True when the same request may succeed if sent again after a short wait (E3004, E5002). */
  readonly retryable: boolean;
}

/** A host directory exposed inside the sandbox. */
export interface Mount {
  /** Host directory, under one of the daemon's allowed paths. */
  host: string;
  /** Absolute path inside the sandbox. */
  sandbox: string;
  /** Defaults to true (read-only), like the wire protocol. */
  readOnly?: boolean;
}

export interface ExecuteOptions {
  /** Wall clock limit in seconds; 0 or absent = the daemon's default. Negative or above its maximum: E2003. */
  timeoutSecs?: number;
  /** Bytes; 0 or absent = the daemon's default. Above its maximum: E2003. */
  memoryLimit?: number | bigint;
  mounts?: Mount[];
}

/** What every job and cell reports. */
export interface Outcome {
  /** The code's exit status: 1 for an uncaught exception, -N when killed by signal N. */
  exitCode: number;
  /** Captured output decoded as UTF-8 (invalid bytes replaced). */
  stdout: string;
  stderr: string;
  /** The exact captured bytes. */
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
  durationMs: number;
  /** Bytes. */
  memoryPeak: number;
  /** User + system CPU time, microseconds. */
  cpuTimeUs: number;
  timedOut: boolean;
  oomKilled: boolean;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export interface ExecuteResult extends Outcome {
  /** Every wire-protocol result field except stdout/stderr (denied_syscalls, limits, error, ...). */
  details: Record<string, unknown>;
}

export interface SessionOptions {
  mounts?: Mount[];
  /** Files put in the workdir: relative path -> content (a string is written as UTF-8). */
  files?: Record<string, Buffer | Uint8Array | string>;
  env?: Record<string, string>;
  /** Bytes, for the whole session; absent = the daemon's default. */
  memoryLimit?: number | bigint;
  /** Ended after this many seconds without a cell; absent = the daemon's default (300). */
  idleTimeoutSecs?: number;
  /** Ended this many seconds after it opened; absent = the daemon's default (3600). */
  maxLifetimeSecs?: number;
}

export interface RunOptions {
  /** Past it the cell gets KeyboardInterrupt; one that ignores it ends the session. */
  timeoutSecs?: number;
  stdin?: Buffer | Uint8Array | string;
  /** Notebook display; absent = on when the daemon offers "display". */
  display?: boolean;
  /** Globs relative to the workdir; matching files come back in `files`. */
  collect?: string[];
  /** Names the cell for cancel(); absent = one is made (unguessable). */
  executionId?: string;
  /** Aborting it cancels the cell (KeyboardInterrupt; the session lives on). */
  signal?: AbortSignal;
}

/** client.stream()'s options: a job's settings, rich output, and how to cancel it. */
export interface StreamOptions extends RunOptions {
  /** Bytes; absent = the daemon's default. */
  memoryLimit?: number | bigint;
  mounts?: Mount[];
  /** Written to the workdir (/tmp) first: relative path -> content (a string is written as UTF-8). */
  files?: Record<string, Buffer | Uint8Array | string>;
  /** Laid over the sandbox's safe environment (PATH here changes where argv[0] is looked up). */
  env?: Record<string, string>;
  /** Aborting it cancels the job (the sandbox is killed). */
  signal?: AbortSignal;
}

/** client.run()'s options: stream()'s, but a program has no display results. */
export type ProgramOptions = Omit<StreamOptions, 'display'>;

/** One piece of a running job's output. */
export type StreamEvent =
  | { kind: 'stdout' | 'stderr'; data: Buffer; text: string; executionId: string }
  | { kind: 'display'; data: DisplayResult; executionId: string };

/**
 * A job or cell running on a worker thread: an async iterable of its events as output arrives
 * (iterate at once; a slow loop stalls the job, not memory) and an EventEmitter of them
 * ('stdout' / 'stderr' with a Buffer, 'display' with a DisplayResult, 'event' with a StreamEvent).
 */
export declare class Execution extends EventEmitter implements AsyncIterable<StreamEvent> {
  /** Known from the start: cancel it from anywhere with client.cancel(executionId). */
  readonly executionId: string;
  /** The result; `cancelled` is true when a cancel ended it. */
  readonly result: Promise<CellResult>;
  [Symbol.asyncIterator](): AsyncIterator<StreamEvent>;
  /** Cancels it; resolves to true if it was running (false once over, or when the daemon cannot cancel). */
  cancel(): Promise<boolean>;
  on(event: 'stdout' | 'stderr', listener: (data: Buffer) => void): this;
  on(event: 'display', listener: (result: DisplayResult) => void): this;
  on(event: 'event', listener: (event: StreamEvent) => void): this;
}

/** One displayed value: MIME type -> value (text as string, images and PDF as Buffer, JSON as object). */
export interface DisplayResult {
  /** True for the final expression's value; false for display() calls and figures. */
  main: boolean;
  data: Record<string, string | Buffer | Record<string, unknown>>;
}

export interface SessionState {
  id: string;
  /** False when this cell ended the session. */
  alive: boolean;
  endReason: string | null;
}

/** A cell's (or a job's) result: Outcome's fields (merged in below) and the rich ones. */
export interface CellResult extends Outcome {}
export declare class CellResult {
  deniedSyscalls: string[];
  limits: string;
  /** The uncaught exception, if any. */
  error: { name: string; value: string; traceback: string } | null;
  /** Display results in emission order. */
  results: DisplayResult[];
  resultsTruncated: boolean;
  /** Collected files: path relative to the workdir -> exact bytes. */
  files: Record<string, Buffer>;
  filesTruncated: boolean;
  executionId: string | null;
  /** 1, 2, ... within a session. */
  executionCount: number | null;
  cancelled: boolean;
  session: SessionState | null;
  /** The final expression's result, or null. */
  readonly main: DisplayResult | null;
  /** The final expression's text/plain, or null. */
  readonly text: string | null;
  /** The main result's text/html, else the first result's that has one. */
  readonly html: string | null;
  /** The main result's image/png, else the first result's (a matplotlib figure). */
  readonly png: Buffer | null;
}

export interface FileEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
}

/** A session's files; paths relative to the workdir, or absolute under /tmp or a writable mount. */
export declare class SessionFiles {
  /** Resolves to the size written. */
  write(path: string, data: Buffer | Uint8Array | string): Promise<number>;
  read(path: string, options?: { maxBytes?: number }): Promise<{ data: Buffer; size: number; truncated: boolean }>;
  list(path?: string): Promise<FileEntry[]>;
  remove(path: string): Promise<void>;
}

/** An open session: one sandbox whose globals, imports and /tmp files persist between cells. */
export declare class Session {
  readonly id: string;
  readonly idleTimeoutSecs: number | null;
  readonly maxLifetimeSecs: number | null;
  readonly files: SessionFiles;
  /**
   * Runs code as the next cell (cells run one at a time, in order), or a program when given
   * an argv array: in the session's sandbox and workdir (display does not apply).
   */
  run(code: string | string[], options?: RunOptions): Promise<CellResult>;
  /** Starts code (or an argv program) as the next cell; its output as it arrives, its result, cancel(). */
  stream(code: string | string[], options?: RunOptions): Execution;
  /** Ends the session; one that already ended closes without an error. */
  close(): Promise<void>;
}

export interface SessionSummary {
  id: string;
  created_at: number;
  last_used_at: number;
  executions: number;
  busy: boolean;
  expires_at: number;
}

export interface ClientOptions {
  /** Worker threads (each with its own connection) running executeAsync calls. Default 4. */
  threads?: number;
  /** Path of libleeward.so; default: libraryPath(). */
  library?: string;
}

export declare class Client {
  constructor(socketPath?: string | null, options?: ClientOptions);
  /** Runs `code` (Python source, run as __main__) in a fresh sandbox; blocks until it finishes. */
  execute(code: string, opts?: ExecuteOptions): ExecuteResult;
  /** Like execute(), on a worker thread: does not block the event loop. Rejects with LeewardError. */
  executeAsync(code: string, opts?: ExecuteOptions): Promise<ExecuteResult>;
  /** Round trip to the daemon; throws LeewardError when it does not answer. */
  ping(): void;
  /** The daemon's pool state (the protocol's Status response). */
  status(): Record<string, unknown>;
  /**
   * Sends any request of the wire protocol (leeward_call) and returns the daemon's reply map:
   * the way to a protocol feature that has no method here yet. Buffers/Uint8Arrays are sent as
   * bytes ({"$bytes": base64}); bytes in the reply are Buffers. Numbers are JS numbers (exact
   * up to 2^53). An error reply throws LeewardError with the daemon's code; a request that
   * cannot be written as JSON is E1003, one that is not an object E1004.
   */
  call(request: Record<string, unknown>): Record<string, any>;
  /** Like call(), on a worker thread: does not block the event loop. */
  callAsync(request: Record<string, unknown>): Promise<Record<string, any>>;
  /**
   * Starts code (or a program: an argv array) in a fresh sandbox and returns at once: its
   * output as it arrives, its result, cancel().
   */
  stream(code: string | string[], options?: StreamOptions): Execution;
  /**
   * Runs a program in a fresh sandbox: argv[0] is looked up on the sandbox's PATH, no shell
   * unless you run one (['sh', '-c', 'a | b']). exitCode is the program's (128 + N: signal N;
   * 127: not found; 126: not executable). Rejects with LeewardError E2010 when the daemon's
   * Ping does not list "argv".
   */
  run(argv: string[], options?: ProgramOptions): Promise<CellResult>;
  /** Cancels a running job or cell of yours by execution id; resolves to true if it was running. */
  cancel(executionId: string): Promise<boolean>;
  /** What the daemon offers beyond protocol v1 (Pong's features: "sessions", "display", ...). */
  features(): Promise<string[]>;
  /** features(), asked once per client. */
  cachedFeatures(): Promise<string[]>;
  /** Opens a session; close it when done (or the daemon ends it after its idle timeout). */
  openSession(options?: SessionOptions): Promise<Session>;
  /** A handle on a session opened elsewhere by the same user; nothing is sent. */
  attachSession(id: string): Session;
  /** Your open sessions. */
  sessions(): Promise<SessionSummary[]>;
  /** Closes the connection and the worker threads; running async calls complete, queued ones reject. Idempotent. */
  close(): void;
}

/**
 * Connects to the daemon at socketPath (undefined, null or '': $LEEWARD_SOCKET,
 * else the default per-user path). Throws LeewardError with code "E1006" when nothing listens.
 */
export declare function connect(socketPath?: string | null, options?: ClientOptions): Client;

/** The version of the loaded libleeward.so. */
export declare function version(): string;

/** Where libleeward.so is loaded from: $LEEWARD_LIBRARY, else <repo>/build/lib/libleeward.so. */
export declare function libraryPath(): string;
