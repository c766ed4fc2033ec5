'use strict';
// An async worker thread: runs libleeward calls synchronously on its own OS
// thread, so that each call and the read of its thread-local last error
// happen on the same thread (koffi's func.async() gives no such guarantee:
// the error would be read on another thread, where it is "").
//
// Messages in:  {type: 'execute', id, code, copts} | {type: 'call', id, requestJson} | {type: 'close'}
// Messages out: {id, result} | {id, error: {code, message}}   (a call's result: the reply's JSON text)

const { parentPort, workerData } = require('node:worker_threads');
const native = require('./native');
const { LeewardError, codes } = require('./errors');

let lib = null;
let handle = null;

function run(msg) {
  if (lib === null) lib = native.load(workerData.libraryPath);
  // One connection per worker, opened on first use and again after a failed
  // connect (the library itself reconnects a handle whose daemon went away).
  if (handle === null) handle = native.connect(lib, workerData.socketPath);
  if (msg.type === 'execute') return native.execute(lib, handle, msg.code, msg.copts);
  if (msg.type === 'call') return native.call(lib, handle, msg.requestJson);
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
