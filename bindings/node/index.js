'use strict';
/**
 * leeward: run untrusted Python in single-use sandboxes, from Node.
 *
 * A koffi binding over libleeward.so (include/leeward.h). `execute` is
 * synchronous; `executeAsync` runs the call on a worker thread and does not
 * block the event loop. Failures are LeewardError with the protocol's `code`.
 */
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const native = require('./lib/native');
const jsonwire = require('./lib/jsonwire');
const { LeewardError, codes } = require('./lib/errors');
const { CellResult, Session, openRequest, cellFields, filesAndEnv } = require('./lib/session');
const { Execution } = require('./lib/streaming');
const { programFields, runnable } = require('./lib/program');

const DEFAULT_THREADS = 4;

function publicResult(raw) {
  const stdoutBytes = Buffer.from(raw.stdoutBytes.buffer, raw.stdoutBytes.byteOffset, raw.stdoutBytes.length);
  const stderrBytes = Buffer.from(raw.stderrBytes.buffer, raw.stderrBytes.byteOffset, raw.stderrBytes.length);
  let details;
  try {
    details = JSON.parse(raw.detailsJson);
  } catch {
    details = {};
  }
  return {
    exitCode: raw.exitCode,
    stdout: stdoutBytes.toString('utf8'),
    stderr: stderrBytes.toString('utf8'),
    stdoutBytes,
    stderrBytes,
    durationMs: raw.durationMs,
    memoryPeak: raw.memoryPeak,
    cpuTimeUs: raw.cpuTimeUs,
    timedOut: raw.timedOut,
    oomKilled: raw.oomKilled,
    stdoutTruncated: raw.stdoutTruncated,
    stderrTruncated: raw.stderrTruncated,
    details,
  };
}

// A client-side connection failure: E1006, as in every binding.
function closedError() {
  return new LeewardError(codes.CONNECTION_CLOSED, 'client is closed');
}

/** A one-shot Execute of `program` (code or argv) with stream()'s and run()'s options, each only when set. */
function executeRequest(program, opts) {
  const request = { type: 'Execute', ...programFields(program), ...cellFields(opts), ...filesAndEnv(opts) };
  if (opts.mounts && opts.mounts.length > 0) {
    request.mounts = opts.mounts.map((m) => ({ host: m.host, sandbox: m.sandbox, ro: m.readOnly !== false }));
  }
  if (opts.memoryLimit !== undefined && opts.memoryLimit !== null) request.memory_limit = Number(opts.memoryLimit);
  if (opts.display) request.display = true;
  return request;
}

/** A pool of worker threads, each with its own connection to the daemon. */
class WorkerPool {
  constructor(libraryPath, socketPath, size) {
    this.workerData = { libraryPath, socketPath };
    this.size = size;
    this.workers = []; // {worker, job}
    this.queue = []; // jobs waiting for a worker
    this.nextId = 1;
    this.closed = false;
  }

  /** onEvent(eventJson, take) for a callStream: call take() once the event is consumed. */
  submit(msg, onEvent) {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const credit = onEvent ? new SharedArrayBuffer(4) : undefined;
      this.queue.push({ msg: { ...msg, id: this.nextId++, credit }, resolve, reject, onEvent });
      this.dispatch();
    });
  }

  dispatch() {
    while (this.queue.length > 0) {
      let slot = this.workers.find((w) => w.job === null);
      if (!slot) {
        if (this.workers.length >= this.size) return;
        slot = this.spawn();
      }
      const job = this.queue.shift();
      slot.job = job;
      slot.worker.ref(); // a pending job keeps the process alive
      slot.worker.postMessage(job.msg);
    }
  }

  spawn() {
    const worker = new Worker(path.join(__dirname, 'lib', 'worker.js'), { workerData: this.workerData });
    const slot = { worker, job: null };
    worker.on('message', (reply) => {
      if (reply.event !== undefined) {
        const untaken = new Int32Array(slot.job.msg.credit);
        slot.job.onEvent(reply.event, () => {
          Atomics.sub(untaken, 0, 1);
          Atomics.notify(untaken, 0);
        });
        return;
      }
      const job = slot.job;
      slot.job = null;
      worker.unref(); // an idle worker does not keep the process alive
      if (job) {
        if (reply.error) job.reject(new LeewardError(reply.error.code, reply.error.message));
        else job.resolve(reply.result);
      }
      this.dispatch();
    });
    const lost = (why) => {
      const i = this.workers.indexOf(slot);
      if (i !== -1) this.workers.splice(i, 1);
      if (slot.job) {
        slot.job.reject(new LeewardError(codes.INTERNAL, `leeward worker thread ${why}`));
        slot.job = null;
      }
      if (!this.closed) this.dispatch();
    };
    worker.on('error', (err) => lost(`failed: ${err && err.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.workers.push(slot);
    return slot;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(closedError());
    // Delivered after the job a worker is running, if any: that one completes.
    for (const { worker } of this.workers) worker.postMessage({ type: 'close' });
  }
}

class Client {
  /**
   * @param {string|undefined|null} socketPath  undefined/null/'': $LEEWARD_SOCKET, else the default path
   * @param {{threads?: number, library?: string}} [options]
   */
  constructor(socketPath, options = {}) {
    if (socketPath === '' || socketPath === null) socketPath = undefined;
    if (socketPath !== undefined) native.checkString(socketPath, 'socketPath');
    const threads = options.threads === undefined ? DEFAULT_THREADS : options.threads;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new LeewardError(codes.WRONG_TYPE, 'threads must be a positive integer');
    }
    this._native = native.load(options.library || native.libraryPath());
    this._handle = native.connect(this._native, socketPath);
    this._pool = new WorkerPool(this._native.file, socketPath, threads);
    this._closed = false;
    this._features = null; // Pong's, asked once when a call first needs it
  }

  _live() {
    if (this._closed) throw closedError();
  }

  /** Runs `code` in a fresh sandbox and waits for it (blocks the calling thread). */
  execute(code, opts) {
    this._live();
    native.checkString(code, 'code');
    const copts = native.cOptions(opts);
    return publicResult(native.execute(this._native, this._handle, code, copts));
  }

  /** Like execute(), on a worker thread: the event loop keeps running. */
  executeAsync(code, opts) {
    try {
      this._live();
      native.checkString(code, 'code');
      const copts = native.cOptions(opts);
      return this._pool.submit({ type: 'execute', code, copts }).then(publicResult);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Round trip to the daemon; throws LeewardError if it does not answer. */
  ping() {
    this._live();
    native.ping(this._native, this._handle);
  }

  /** The daemon's pool state (the protocol's Status response). */
  status() {
    this._live();
    return JSON.parse(native.status(this._native, this._handle));
  }

  /**
   * Sends any request of the wire protocol (leeward_call) and returns the daemon's
   * reply: the way to a protocol feature that has no method here yet. Buffers and
   * Uint8Arrays go as bytes ({"$bytes": base64}); bytes in the reply come back as
   * Buffers. An error reply throws LeewardError with the daemon's code.
   */
  call(request) {
    this._live();
    return jsonwire.parse(native.call(this._native, this._handle, jsonwire.stringify(request)));
  }

  /** Like call(), on a worker thread: the event loop keeps running. */
  callAsync(request) {
    try {
      this._live();
      return this._pool.submit({ type: 'call', requestJson: jsonwire.stringify(request) }).then(jsonwire.parse);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Starts `code` in a fresh sandbox (or a program: an argv array, as for run()) and
   * returns an Execution at once: an async iterable and EventEmitter ('stdout', 'stderr',
   * 'display', 'event') of its output as it arrives, with `result` (a Promise of
   * CellResult), `executionId` and `cancel()`. options: timeoutSecs, memoryLimit, mounts,
   * stdin, env, files, display, collect, executionId, and signal (an AbortSignal whose
   * abort cancels the job).
   */
  stream(code, opts = {}) {
    this._live();
    const request = executeRequest(code, opts);
    return new Execution(this, runnable(this, request), opts, (wire) => new CellResult(wire));
  }

  /**
   * Runs a program (argv: an array of strings, argv[0] looked up on the sandbox's PATH; no
   * shell unless you run one) in a fresh sandbox; resolves to its CellResult. exitCode is
   * the program's: 128 + N when signal N ended it, 127 when argv[0] was not found. options
   * as for stream() but display; signal's abort kills it (`result.cancelled`). Rejects with
   * LeewardError E2010 when the daemon does not run programs.
   */
  run(argv, opts = {}) {
    try {
      this._live();
      if (!Array.isArray(argv)) throw new TypeError('run() takes an argv array; for Python code use executeAsync()');
      if (opts.signal || opts.executionId) return this.stream(argv, opts).result; // cancellable
      return runnable(this, executeRequest(argv, opts))
        .then((request) => this.callAsync(request))
        .then((reply) => new CellResult(reply.result));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Cancels a running job or session cell of yours by its execution id (from this or
   * any other client of the same user). Resolves to true if it was running.
   */
  async cancel(executionId) {
    this._live();
    return Boolean(this.call({ type: 'Cancel', execution_id: executionId }).found);
  }

  /** Resolves to what the daemon offers beyond protocol v1 (Pong's `features`); [] for a v1 daemon. */
  async features() {
    return (await this.callAsync({ type: 'Ping' })).features || [];
  }

  /** features(), asked of the daemon once per client. */
  async cachedFeatures() {
    if (this._features === null) this._features = await this.features();
    return this._features;
  }

  /** Opens a session (one sandbox kept alive between cells); resolves to a Session. */
  async openSession(opts) {
    const reply = await this.callAsync(openRequest(opts));
    return new Session(this, reply.session);
  }

  /** A Session handle for an id opened elsewhere by the same user; nothing is sent. */
  attachSession(id) {
    return new Session(this, { id });
  }

  /** Resolves to your open sessions (SessionList). */
  async sessions() {
    return (await this.callAsync({ type: 'SessionList' })).sessions || [];
  }

  /**
   * Closes the connection and stops the worker threads. Async calls already
   * running complete; queued ones are rejected. Idempotent.
   */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._pool.close();
    this._native.fn.disconnect(this._handle);
    this._handle = null;
  }
}

/** Connects to the daemon; throws LeewardError (code E1006 when nothing listens). */
function connect(socketPath, options) {
  return new Client(socketPath, options);
}

/** The version of the loaded libleeward.so. */
function version() {
  return native.load().fn.version();
}

module.exports = {
  connect, Client, Session, CellResult, Execution, LeewardError, codes, version, libraryPath: native.libraryPath,
};
