'use strict';
// Streaming and cancel (protocol v2 "stream", "execution_id", Cancel): a job's output as
// it arrives, and the handle that stops it.
//
//   const run = client.stream("for i in range(3): print(i)", { signal });
//   for await (const event of run) process.stdout.write(event.data);  // or run.on('stdout', ...)
//   const result = await run.result;  // result.cancelled after run.cancel() or signal's abort
//
// Events are taken as the caller consumes them: an async iterator takes one per step, an
// EventEmitter listener at once. A slow iterator stalls the worker thread, which stops
// reading the connection, and the daemon stalls the job: memory stays bounded end to end.
// Iterate at once (events that came before the loop started went to listeners only).

const { EventEmitter } = require('node:events');
const crypto = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const jsonwire = require('./jsonwire');

const CANCEL_RETRY_MS = 20; // the request may still be on its way: Cancel again until found or over

function newExecutionId() {
  return crypto.randomBytes(16).toString('base64url');
}

function toEvent(wire) {
  const executionId = wire.execution_id;
  if (wire.event === 'display') {
    return { kind: 'display', data: { main: Boolean(wire.data.main), data: wire.data.data || {} }, executionId };
  }
  const data = typeof wire.data === 'string' ? Buffer.from(wire.data) : wire.data;
  return { kind: wire.event, data, text: data.toString('utf8'), executionId };
}

/** A daemon that does not stream: its output as events once the result is in. */
function replayed(result, executionId) {
  const events = [];
  for (const [kind, data] of [['stdout', result.stdoutBytes], ['stderr', result.stderrBytes]]) {
    if (data.length > 0) events.push({ kind, data, text: data.toString('utf8'), executionId });
  }
  for (const r of result.results) events.push({ kind: 'display', data: r, executionId });
  return events;
}

class Execution extends EventEmitter {
  /**
   * @param client   the Client
   * @param request  an Execute or SessionExecute request (or a Promise of one), without stream/execution_id
   * @param options  {executionId?, signal?}; makeResult(wire) turns the reply's result into a CellResult
   */
  constructor(client, request, { executionId, signal } = {}, makeResult) {
    super();
    this.executionId = executionId || newExecutionId();
    this._client = client;
    this._queue = []; // [event, take] waiting for the iterator
    this._iterating = false;
    this._wake = () => {};
    this._finished = false;
    this._cancellable = false;
    this.result = this._run(request, signal, makeResult);
    this.result.catch(() => {}); // the caller may only iterate: the loop rethrows it
  }

  async _run(pending, signal, makeResult) {
    try {
      const request = await pending;
      const features = await this._client.cachedFeatures();
      if (features.includes('stream')) request.stream = true;
      if (features.includes('cancel')) {
        request.execution_id = this.executionId;
        this._cancellable = true;
      }
      if (signal) {
        if (signal.aborted) this.cancel();
        else signal.addEventListener('abort', () => this.cancel(), { once: true });
      }
      const reply = await this._client._pool.submit(
        { type: 'callStream', requestJson: jsonwire.stringify(request) },
        (eventJson, take) => this._deliver(toEvent(jsonwire.parse(eventJson)), take));
      const result = makeResult(jsonwire.parse(reply).result);
      if (!request.stream) for (const event of replayed(result, this.executionId)) this._deliver(event, () => {});
      return result;
    } finally {
      this._finished = true;
      this._wake();
    }
  }

  _deliver(event, take) {
    this.emit('event', event);
    this.emit(event.kind, event.data);
    if (!this._iterating) {
      take();
      return;
    }
    this._queue.push([event, take]);
    this._wake();
  }

  async *[Symbol.asyncIterator]() {
    this._iterating = true;
    try {
      for (;;) {
        if (this._queue.length > 0) {
          const [event, take] = this._queue.shift();
          take();
          yield event;
        } else if (this._finished) {
          break;
        } else {
          await new Promise((resolve) => { this._wake = resolve; });
        }
      }
      await this.result; // a failed request fails the loop
    } finally {
      this._iterating = false;
      for (const [, take] of this._queue.splice(0)) take();
    }
  }

  /**
   * Cancels the job (a session cell: KeyboardInterrupt, then killed after the daemon's
   * interrupt_grace_secs). Resolves to true if it was running; its result then has
   * `cancelled` true. False once it is over, or when the daemon cannot cancel.
   */
  async cancel() {
    while (!this._finished) {
      if (this._cancellable && await this._client.cancel(this.executionId)) return true;
      await sleep(CANCEL_RETRY_MS);
    }
    return false;
  }
}

module.exports = { Execution, newExecutionId };
