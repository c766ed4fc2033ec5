// Real executions against a daemon this file starts (skipped, with the reason, when none can).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startDaemon } from '../support/daemon.mjs';

const require = createRequire(import.meta.url);
const { connect, LeewardError, codes, version } = require('../index.js');
const native = require('../lib/native.js');

let libSkip = false; // tests that need the library but no daemon
try {
  version();
} catch (err) {
  libSkip = `libleeward cannot be loaded: ${err.message}`;
}
const daemon = await startDaemon();
const skip = daemon.skip || false;
if (skip) console.log(`leeward: skipping daemon tests: ${skip}`);
after(async () => {
  if (daemon.stop) await daemon.stop();
});

function withClient(fn) {
  return async () => {
    const client = connect(daemon.socketPath);
    try {
      await fn(client);
    } finally {
      client.close();
    }
  };
}

function assertLeewardError(err, code) {
  assert.ok(err instanceof LeewardError, `expected LeewardError, got ${err}`);
  assert.ok(err instanceof Error);
  assert.equal(err.code, code, err.message);
  assert.ok(err.detail.length > 0);
  assert.ok(err.message.startsWith(`${code}: `));
  return true;
}

test('version', { skip: libSkip }, () => {
  assert.match(version(), /^\d+\.\d+\.\d+/);
});

test('print(sum(range(100)))', { skip }, withClient((client) => {
  const r = client.execute('print(sum(range(100)))');
  assert.equal(r.stdout, '4950\n');
  assert.equal(r.exitCode, 0);
  assert.equal(r.stderr, '');
  assert.ok(Buffer.isBuffer(r.stdoutBytes));
  assert.deepEqual(r.stdoutBytes, Buffer.from('4950\n'));
  assert.equal(r.timedOut, false);
  assert.equal(r.oomKilled, false);
  assert.equal(r.stdoutTruncated, false);
  assert.equal(r.stderrTruncated, false);
  assert.equal(typeof r.durationMs, 'number');
  assert.equal(typeof r.memoryPeak, 'number');
  assert.equal(typeof r.cpuTimeUs, 'number');
  assert.equal(r.details.exit_code, 0);
}));

test('exit code and stderr', { skip }, withClient((client) => {
  const r = client.execute("import sys\nsys.stderr.write('oops')\nsys.exit(3)");
  assert.equal(r.exitCode, 3);
  assert.equal(r.stderr, 'oops');
  const e = client.execute("raise ValueError('boom')");
  assert.equal(e.exitCode, 1);
  assert.match(e.stderr, /ValueError: boom/);
}));

test('binary output', { skip }, withClient((client) => {
  const r = client.execute("import sys; sys.stdout.buffer.write(b'a\\x00b\\xff')");
  assert.deepEqual(r.stdoutBytes, Buffer.from([0x61, 0, 0x62, 0xff]));
}));

test('timeout', { skip }, withClient(async (client) => {
  const r = client.execute('while True: pass', { timeoutSecs: 1 });
  assert.equal(r.timedOut, true);
  const a = await client.executeAsync('while True: pass', { timeoutSecs: 1 });
  assert.equal(a.timedOut, true);
}));

test('executeAsync', { skip }, withClient(async (client) => {
  const r = await client.executeAsync('print(sum(range(100)))');
  assert.equal(r.stdout, '4950\n');
  assert.ok(Buffer.isBuffer(r.stdoutBytes));
}));

test('16 concurrent executeAsync calls each get their own result', { skip }, withClient(async (client) => {
  const results = await Promise.all(
    Array.from({ length: 16 }, (_, i) => client.executeAsync(`print(${i}*${i})`)),
  );
  results.forEach((r, i) => {
    assert.equal(r.stdout, `${i * i}\n`, `call ${i}`);
    assert.equal(r.exitCode, 0);
  });
}));

test('concurrent failures and successes each get their own outcome', { skip }, withClient(async (client) => {
  // The error of a failed call is read on the thread that made it: a neighbour's
  // success must not blank it, nor its failure leak into a neighbour.
  const outcomes = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => (i % 2
    ? client.executeAsync('print(1)', { timeoutSecs: 1e9 })
    : client.executeAsync(`print(${i}+1)`))));
  outcomes.forEach((o, i) => {
    if (i % 2) {
      assert.equal(o.status, 'rejected', `call ${i}`);
      assertLeewardError(o.reason, codes.OUT_OF_RANGE);
    } else {
      assert.equal(o.status, 'fulfilled', `call ${i}: ${o.reason}`);
      assert.equal(o.value.stdout, `${i + 1}\n`);
    }
  });
}));

test('the event loop keeps ticking during executeAsync', { skip }, withClient(async (client) => {
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 10);
  try {
    const r = await client.executeAsync('import time; time.sleep(1)');
    assert.equal(r.exitCode, 0);
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks >= 1, `setInterval never ran while executeAsync was pending (ticks=${ticks})`);
}));

test('no daemon: LeewardError E1006, no crash', { skip: libSkip }, () => {
  const bogus = path.join(os.tmpdir(), `leeward-nobody-${process.pid}.sock`);
  assert.throws(() => connect(bogus), (err) => assertLeewardError(err, codes.CONNECTION_CLOSED));
});

test('bad options: LeewardError E2003, sync and async', { skip }, withClient(async (client) => {
  assert.throws(() => client.execute('print(1)', { timeoutSecs: 1e9 }), (e) => assertLeewardError(e, 'E2003'));
  assert.throws(() => client.execute('print(1)', { timeoutSecs: -1 }), (e) => assertLeewardError(e, 'E2003'));
  assert.throws(() => client.execute('print(1)', { memoryLimit: 2 ** 60 }), (e) => assertLeewardError(e, 'E2003'));
  await assert.rejects(client.executeAsync('print(1)', { timeoutSecs: 1e9 }), (e) => assertLeewardError(e, 'E2003'));
  await assert.rejects(client.executeAsync('print(1)', { memoryLimit: 2n ** 60n }), (e) => assertLeewardError(e, 'E2003'));
  // Still usable after refused requests.
  assert.equal(client.execute('print(2)').stdout, '2\n');
  assert.equal((await client.executeAsync('print(3)')).stdout, '3\n');
}));

test('malformed arguments are refused before reaching the daemon', { skip }, withClient(async (client) => {
  assert.throws(() => client.execute('print(1)\0print(2)'), (e) => assertLeewardError(e, codes.WRONG_TYPE));
  assert.throws(() => client.execute(42), (e) => assertLeewardError(e, codes.WRONG_TYPE));
  assert.throws(() => client.execute('print(1)', { timeout: 5 }), (e) => assertLeewardError(e, codes.UNKNOWN_FIELD));
  await assert.rejects(client.executeAsync('print(1)', { timeoutSecs: '5' }), (e) => assertLeewardError(e, codes.WRONG_TYPE));
}));

test('mounts', { skip }, withClient(async (client) => {
  const shared = fs.mkdtempSync(path.join(daemon.allowedDir, 'job-'));
  fs.chmodSync(shared, 0o777);
  fs.writeFileSync(path.join(shared, 'input.txt'), 'host data');
  const code = "print(open('/data/input.txt').read())\n"
    + "try:\n    open('/data/new', 'w'); print('written')\n"
    + "except OSError as e:\n    print('errno', e.errno)\n";
  const ro = await client.executeAsync(code, { mounts: [{ host: shared, sandbox: '/data' }] });
  assert.equal(ro.stdout, 'host data\nerrno 30\n', ro.stderr);
  const rw = client.execute("open('/out/result.txt', 'w').write('from sandbox')",
    { mounts: [{ host: shared, sandbox: '/out', readOnly: false }] });
  assert.equal(rw.exitCode, 0, rw.stderr);
  assert.equal(fs.readFileSync(path.join(shared, 'result.txt'), 'utf8'), 'from sandbox');
  assert.throws(() => client.execute('print(1)', { mounts: [{ host: '/etc', sandbox: '/data' }] }),
    (e) => assertLeewardError(e, codes.MOUNT_NOT_ALLOWED));
}));

test('ping, status and close', { skip }, async () => {
  const client = connect(daemon.socketPath);
  client.ping();
  assert.equal(typeof client.status(), 'object');
  const pending = client.executeAsync('print(7)');
  client.close();
  client.close(); // idempotent
  // A call already submitted completes or is refused with a LeewardError, never hangs.
  try {
    assert.equal((await pending).stdout, '7\n');
  } catch (err) {
    assertLeewardError(err, codes.CONNECTION_CLOSED);
  }
  // A closed client is a client-side connection failure: E1006, as in every binding.
  assert.throws(() => client.execute('print(1)'), (e) => assertLeewardError(e, codes.CONNECTION_CLOSED));
  await assert.rejects(client.executeAsync('print(1)'), (e) => assertLeewardError(e, codes.CONNECTION_CLOSED));
  assert.throws(() => client.call({ type: 'Ping' }), (e) => assertLeewardError(e, codes.CONNECTION_CLOSED));
  await assert.rejects(client.callAsync({ type: 'Ping' }), (e) => assertLeewardError(e, codes.CONNECTION_CLOSED));
});

test('call: Ping, Status and Execute through JSON, bytes as Buffers', { skip }, withClient(async (client) => {
  // A v2 daemon's Pong names its protocol version and the features it offers (PROTOCOL-V2 "Discovery").
  const pong = client.call({ type: 'Ping' });
  assert.deepEqual(Object.keys(pong).sort(), ['features', 'success', 'type', 'version']);
  assert.deepEqual([pong.type, pong.success, pong.version], ['Pong', true, 2]);
  assert.ok(pong.features.includes('sessions'), pong.features);
  const status = await client.callAsync({ type: 'Status' });
  assert.equal(status.type, 'Status');
  assert.equal(status.version, version());
  const reply = client.call({
    type: 'Execute',
    code: 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])',
    stdin: Buffer.from([0, 0xff, 0x61]),
    timeout_secs: 10,
  });
  assert.equal(reply.success, true);
  assert.equal(reply.result.exit_code, 0);
  assert.deepEqual(reply.result.stdout, Buffer.from([0x61, 0xff, 0]));
  const asyncReply = await client.callAsync({ type: 'Execute', code: 'print(6 * 7)' });
  assert.deepEqual(asyncReply.result.stdout, Buffer.from('42\n'));
}));

test('call: error replies and malformed requests are LeewardErrors', { skip }, withClient(async (client) => {
  assert.throws(() => client.call({ type: 'Execute', code: 'print(1)', timeout_secs: -1 }),
    (e) => assertLeewardError(e, codes.OUT_OF_RANGE));
  await assert.rejects(client.callAsync({ type: 'NoSuchRequest' }), (e) => assertLeewardError(e, codes.UNKNOWN_TYPE));
  assert.throws(() => client.call('Ping'), (e) => assertLeewardError(e, codes.FRAME_NOT_A_MAP));
  assert.throws(() => client.call({ type: 'Ping', n: 1n }), (e) => assertLeewardError(e, codes.FRAME_UNDECODABLE));
  // Text that is not JSON, straight to leeward_call.
  assert.throws(() => native.call(client._native, client._handle, '{"type": "Ping"'),
    (e) => assertLeewardError(e, codes.FRAME_UNDECODABLE));
  assert.throws(() => client.call({ type: 'Execute', code: '', stdin: { $bytes: '!!' } }),
    (e) => assertLeewardError(e, codes.WRONG_TYPE));
  assert.equal(client.call({ type: 'Ping' }).success, true); // still usable
}));
