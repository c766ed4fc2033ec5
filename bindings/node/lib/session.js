'use strict';
// Sessions: one live sandbox whose globals, imports and /tmp files persist between cells
// (SessionOpen, SessionExecute, SessionClose and the File* requests of protocol v2), over
// Client.callAsync, so no call blocks the event loop.
//
//   const session = await client.openSession();
//   await session.run('x = 1');
//   (await session.run('x + 1')).text === '2';
//   await session.close();

const { codes } = require('./errors');
const { Execution } = require('./streaming');
const { programFields, runnable } = require('./program');

/** A cell's or a job's result: the wire protocol's result map, camelCased. */
class CellResult {
  constructor(wire) {
    const stdoutBytes = wire.stdout || Buffer.alloc(0);
    const stderrBytes = wire.stderr || Buffer.alloc(0);
    this.exitCode = wire.exit_code;
    this.stdout = stdoutBytes.toString('utf8');
    this.stderr = stderrBytes.toString('utf8');
    this.stdoutBytes = stdoutBytes;
    this.stderrBytes = stderrBytes;
    this.durationMs = wire.duration_ms;
    this.memoryPeak = wire.memory_peak;
    this.cpuTimeUs = wire.cpu_time_us;
    this.timedOut = Boolean(wire.timed_out);
    this.oomKilled = Boolean(wire.oom_killed);
    this.stdoutTruncated = Boolean(wire.stdout_truncated);
    this.stderrTruncated = Boolean(wire.stderr_truncated);
    this.deniedSyscalls = wire.denied_syscalls || [];
    this.limits = wire.limits;
    this.error = wire.error || null;
    this.results = (wire.results || []).map((r) => ({ main: Boolean(r.main), data: r.data || {} }));
    this.resultsTruncated = Boolean(wire.results_truncated);
    this.files = wire.files || {};
    this.filesTruncated = Boolean(wire.files_truncated);
    this.executionId = wire.execution_id ?? null;
    this.executionCount = wire.execution_count ?? null;
    this.cancelled = Boolean(wire.cancelled);
    this.session = wire.session
      ? { id: wire.session.id, alive: Boolean(wire.session.alive), endReason: wire.session.end_reason ?? null }
      : null;
  }

  /** The final expression's result, or null. */
  get main() {
    return this.results.find((r) => r.main) || null;
  }

  /** The final expression's text/plain, or null. */
  get text() {
    const main = this.main;
    return main && main.data['text/plain'] !== undefined ? main.data['text/plain'] : null;
  }

  /** The main result's text/html, else the first result's that has one. */
  get html() {
    return this._first('text/html');
  }

  /** The main result's image/png (a Buffer), else the first result's (a matplotlib figure). */
  get png() {
    return this._first('image/png');
  }

  _first(mime) {
    const ordered = [...this.results.filter((r) => r.main), ...this.results.filter((r) => !r.main)];
    const found = ordered.find((r) => r.data[mime] !== undefined);
    return found ? found.data[mime] : null;
  }
}

function secondsField(request, key, value, what) {
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !(value > 0)) throw new TypeError(`${what} must be a number > 0`);
  request[key] = value;
}

/** The optional fields a one-shot Execute and a session cell share, each only when set. */
function cellFields(opts) {
  const fields = {};
  secondsField(fields, 'timeout_secs', opts.timeoutSecs, 'timeoutSecs');
  if (opts.stdin !== undefined && opts.stdin.length > 0) {
    fields.stdin = typeof opts.stdin === 'string' ? Buffer.from(opts.stdin) : opts.stdin;
  }
  if (opts.collect && opts.collect.length > 0) fields.collect = [...opts.collect];
  return fields;
}

/** `files` (a string is written as UTF-8) and `env` of a SessionOpen or an Execute, each only when set. */
function filesAndEnv(opts) {
  const fields = {};
  if (opts.files && Object.keys(opts.files).length > 0) {
    fields.files = Object.fromEntries(Object.entries(opts.files)
      .map(([name, data]) => [name, typeof data === 'string' ? Buffer.from(data) : data]));
  }
  if (opts.env && Object.keys(opts.env).length > 0) fields.env = { ...opts.env };
  return fields;
}

/** The SessionOpen request for openSession(opts). */
function openRequest(opts = {}) {
  const request = { type: 'SessionOpen' };
  if (opts.mounts && opts.mounts.length > 0) {
    request.mounts = opts.mounts.map((m) => ({ host: m.host, sandbox: m.sandbox, ro: m.readOnly !== false }));
  }
  Object.assign(request, filesAndEnv(opts));
  if (opts.memoryLimit !== undefined && opts.memoryLimit !== null) request.memory_limit = Number(opts.memoryLimit);
  secondsField(request, 'idle_timeout_secs', opts.idleTimeoutSecs, 'idleTimeoutSecs');
  secondsField(request, 'max_lifetime_secs', opts.maxLifetimeSecs, 'maxLifetimeSecs');
  return request;
}

/** A session's files, read and written by its own sandbox process. */
class SessionFiles {
  constructor(client, sessionId) {
    this._client = client;
    this._sessionId = sessionId;
  }

  _call(type, fields) {
    return this._client.callAsync({ type, session_id: this._sessionId, ...fields });
  }

  /** Replaces `path` with data (a Buffer, or a string as UTF-8); resolves to the size written. */
  async write(path, data) {
    const reply = await this._call('FileWrite', { path, data: typeof data === 'string' ? Buffer.from(data) : data });
    return reply.size;
  }

  /** Resolves to {data: Buffer, size, truncated}; maxBytes bounds what is read. */
  async read(path, { maxBytes } = {}) {
    const reply = await this._call('FileRead', maxBytes === undefined ? { path } : { path, max_bytes: maxBytes });
    return { data: reply.data || Buffer.alloc(0), size: reply.size, truncated: Boolean(reply.truncated) };
  }

  /** Resolves to the entries [{name, type, size}] of the directory `path`. */
  async list(path = '.') {
    return (await this._call('FileList', { path })).entries || [];
  }

  async remove(path) {
    await this._call('FileRemove', { path });
  }
}

/** An open session; made by client.openSession() or client.attachSession(id). */
class Session {
  constructor(client, opened) {
    this._client = client;
    this.id = opened.id;
    this.idleTimeoutSecs = opened.idle_timeout_secs ?? null;
    this.maxLifetimeSecs = opened.max_lifetime_secs ?? null;
    this.files = new SessionFiles(client, this.id);
  }

  /**
   * Runs `code` as the session's next cell, or a program when given an argv array
   * (`session.run(['ls', '-l'])`: in the session's sandbox and workdir; past its timeout it
   * gets SIGINT). display (code only): undefined (default) means on when the daemon offers
   * it; the final expression's value is then `result.text`.
   */
  async run(code, opts = {}) {
    if (opts.signal || opts.executionId) return this.stream(code, opts).result; // cancellable
    const request = await this._cellRequest(code, opts);
    return new CellResult((await this._client.callAsync(request)).result);
  }

  /**
   * Starts `code` as the next cell and returns an Execution at once (as client.stream()):
   * its events as they arrive, `result`, `cancel()` (KeyboardInterrupt in the cell; the
   * session lives on), and options.signal's abort cancels it.
   */
  stream(code, opts = {}) {
    return new Execution(this._client, this._cellRequest(code, opts), opts, (wire) => new CellResult(wire));
  }

  async _cellRequest(code, opts) {
    const request = { type: 'SessionExecute', session_id: this.id, ...programFields(code), ...cellFields(opts) };
    const display = opts.display === undefined
      ? request.code !== undefined && (await this._client.cachedFeatures()).includes('display')
      : opts.display;
    if (display) request.display = true;
    return runnable(this._client, request);
  }

  /** Ends the session. A session that already ended closes without an error. */
  async close() {
    try {
      await this._client.callAsync({ type: 'SessionClose', session_id: this.id });
    } catch (err) {
      if (err.code !== codes.SESSION_ENDED) throw err;
    }
  }
}

module.exports = { CellResult, Session, SessionFiles, openRequest, cellFields, filesAndEnv };
