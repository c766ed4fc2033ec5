'use strict';
// An async worker thread: runs libleeward calls synchronously on its own OS
// thread, so that each call and the read of its thread-local last error
// happen on the same thread (koffi's func.async() gives no such guarantee:
// the error would be read on another thread, where it is "").
//
// Messages in:  {type: 'execute', id, code, copts} | {type: 'call', id, requestJson}
//               | {type: 'callStream', id, requestJson, credit} | {type: 'close'}
// Messages out: {id, result} | {id, error: {code, message}}   (a call's result: the reply's JSON text)
//               | {id, event}   (a callStream's Event frame, JSON text, before its result)
//
// Backpressure of a callStream: credit is a SharedArrayBuffer counting events posted and
// not yet taken by the main thread; past MAX_UNTAKEN this thread waits, so it stops
// reading the connection and the daemon stops reading the job's output.

const { parentPort, workerData } = require('node:worker_threads');
const native = require('./native');
const { LeewardError, codes } = require('./errors');

let lib = null;
let handle = null;
const MAX_UNTAKEN = 64;

function postEvent(msg, eventJson) {
  const untaken = new Int32Array(msg.credit);
  Atomics.add(untaken, 0, 1);
  parentPort.postMessage({ id: msg.id, event: eventJson });
  for (let n = Atomics.load(untaken, 0); n >= MAX_UNTAKEN; n = Atomics.load(untaken, 0)) {
    Atomics.wait(untaken, 0, n);
  }
}

function run(msg) {
  if (lib === null) lib = native.load(workerData.libraryPath);
  // One connection per worker, opened on first use and again after a failed
  // connect (the library itself reconnects a handle whose daemon went away).
  if (handle === null) handle = native.connect(lib, workerData.socketPath);
  if (msg.type === 'execute') return native.execute(lib, handle, msg.code, msg.copts);
  if (msg.type === 'call') return native.call(lib, handle, msg.requestJson);
  if (msg.type === 'callStream') {
    return native.callStream(lib, handle, msg.requestJson, (eventJson) => postEvent(msg, eventJson));
  }
  throw new LeewardError(codes.INTERNAL, `unknown worker request ${msg.type}`);
}

parentPort.on('message', (msg) => {
  if (msg.type === 'close') {
    if (handle !== null) lib.fn.disconnect(handle);
    handle = null;
    parentPort.close();
    return;
  }
  let reply;
  const transfer = [];
  try {
    const result = run(msg);
    if (msg.type === 'execute') transfer.push(result.stdoutBytes.buffer, result.stderrBytes.buffer);
    reply = { id: msg.id, result };
  } catch (err) {
    const code = err instanceof LeewardError ? err.code : codes.INTERNAL;
    const message = err instanceof LeewardError ? err.detail : String(err && err.message);
    reply = { id: msg.id, error: { code, message } };
  }
  parentPort.postMessage(reply, transfer);
});
