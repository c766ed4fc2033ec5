// Sessions against tests/bindings/fake_daemon.py (request shapes, reply decoding), then
// against a real daemon once its Pong lists the features.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { repoRoot, startDaemon } from '../support/daemon.mjs';

const require = createRequire(import.meta.url);
const { connect, LeewardError, codes, version } = require('../index.js');
const jsonwire = require('../lib/jsonwire.js');

const SID = 'k3J9x-AbCdEfGhIjKlMnOp';
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const python = path.join(repoRoot, '.venv', 'bin', 'python');

let fakeSkip = false;
try {
  version();
  if (!fs.existsSync(python)) fakeSkip = `${python} not found (run \`make setup\`)`;
} catch (err) {
  fakeSkip = `libleeward cannot be loaded: ${err.message}`;
}

/** Runs the scripted fake daemon; resolves to {client, requests(...types), stop}. */
async function startFake(replies) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leeward-node-fake-'));
  const socketPath = path.join(dir, 'fake.sock');
  const log = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(path.join(dir, 'replies.json'), jsonwire.stringify(replies));
  const child = spawn(python, [path.join(repoRoot, 'tests', 'bindings', 'fake_daemon.py'), socketPath,
    path.join(dir, 'replies.json'), log], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [first] = await once(child.stdout, 'data');
  assert.equal(first.toString().trim(), 'ready');
  const client = connect(socketPath);
  return {
    client,
    requests: (...types) => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [])
      .map((line) => jsonwire.parse(line)).filter((r) => types.includes(r.type)),
    stop: async () => {
      client.close();
      child.stdin.end();
      await once(child, 'exit');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function withFake(replies, fn) {
  return async () => {
    const fake = await startFake(replies);
    try {
      await fn(fake);
    } finally {
      await fake.stop();
    }
  };
}

const ok = (type, fields = {}) => ({ type, success: true, ...fields });
const failed = (type, code, message) => ({ type, success: false, error: { code, message } });
const pong = (...features) => ({ type: 'Pong', success: true, version: 2, features });
const cell = (count, fields = {}) => ok('SessionExecute', {
  result: {
    exit_code: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), duration_ms: 0.4, memory_peak: 1 << 20,
    cpu_time_us: 120, timed_out: false, oom_killed: false, denied_syscalls: [], limits: 'cgroup',
    execution_count: count, session: { id: SID, alive: true }, ...fields,
  },
});
const OPENED = ok('SessionOpen', { session: { id: SID, idle_timeout_secs: 300, max_lifetime_secs: 3600 } });

test('openSession, run and close send the protocol\'s requests', { skip: fakeSkip }, withFake({
  Ping: pong('sessions', 'display'), SessionOpen: OPENED, SessionClose: ok('SessionClose'),
  SessionExecute: [cell(1), cell(2, { results: [{ main: true, data: { 'text/plain': '2' } }] })],
}, async ({ client, requests }) => {
  const session = await client.openSession({
    mounts: [{ host: '/srv', sandbox: '/srv', readOnly: false }], files: { 'in.txt': 'hi' }, env: { A: '1' },
    memoryLimit: 512 * 1024 * 1024, idleTimeoutSecs: 60, maxLifetimeSecs: 600,
  });
  assert.equal(session.id, SID);
  assert.equal(session.idleTimeoutSecs, 300);
  const first = await session.run('x = 1');
  const second = await session.run('x + 1', { timeoutSecs: 5, stdin: 'in', collect: ['*.csv'] });
  await session.close();
  assert.equal(first.text, null);
  assert.equal(first.executionCount, 1);
  assert.equal(second.text, '2');
  assert.deepEqual(second.session, { id: SID, alive: true, endReason: null });
  assert.deepEqual(requests('SessionOpen'), [{
    type: 'SessionOpen', mounts: [{ host: '/srv', sandbox: '/srv', ro: false }], files: { 'in.txt': Buffer.from('hi') },
    env: { A: '1' }, memory_limit: 512 * 1024 * 1024, idle_timeout_secs: 60, max_lifetime_secs: 600,
  }]);
  assert.deepEqual(requests('SessionExecute', 'SessionClose'), [
    { type: 'SessionExecute', session_id: SID, code: 'x = 1', display: true },
    { type: 'SessionExecute', session_id: SID, code: 'x + 1', display: true, timeout_secs: 5,
      stdin: Buffer.from('in'), collect: ['*.csv'] },
    { type: 'SessionClose', session_id: SID },
  ]);
  assert.equal(requests('Ping').length, 1); // features asked once per client
}));

test('display is sent only to a daemon that offers it', { skip: fakeSkip }, withFake({
  Ping: pong('sessions'), SessionExecute: cell(1),
}, async ({ client, requests }) => {
  const session = client.attachSession(SID);
  await session.run('pass');
  await session.run('pass', { display: false });
  const plain = { type: 'SessionExecute', session_id: SID, code: 'pass' };
  assert.deepEqual(requests('SessionExecute'), [plain, plain]);
}));

test('rich results decode: text, html, png, files', { skip: fakeSkip }, withFake({
  Ping: pong('display'),
  SessionExecute: cell(3, {
    stdout: Buffer.from([0x6f, 0xff]), results_truncated: true, files: { 'a.csv': Buffer.from([0, 0x2c]) },
    results: [{ main: false, data: { 'image/png': PNG, 'text/plain': '<Figure>' } },
      { main: true, data: { 'text/plain': '   a', 'text/html': '<table/>', 'application/json': { a: 1 } } }],
    error: { name: 'ValueError', value: 'v', traceback: 'tb' },
  }),
}, async ({ client }) => {
  const r = await client.attachSession(SID).run('df');
  assert.equal(r.text, '   a');
  assert.equal(r.html, '<table/>');
  assert.ok(Buffer.isBuffer(r.png));
  assert.deepEqual(r.png, PNG);
  assert.deepEqual(r.main.data['application/json'], { a: 1 });
  assert.equal(r.resultsTruncated, true);
  assert.deepEqual(r.files['a.csv'], Buffer.from([0, 0x2c]));
  assert.deepEqual(r.stdoutBytes, Buffer.from([0x6f, 0xff]));
  assert.equal(r.error.name, 'ValueError');
}));

test('session.files: write, read, list, remove', { skip: fakeSkip }, withFake({
  FileWrite: ok('FileWrite', { size: 3 }),
  FileRead: ok('FileRead', { data: Buffer.from([0]), size: 3, truncated: true }),
  FileList: ok('FileList', { entries: [{ name: 'a', type: 'file', size: 3 }] }),
  FileRemove: ok('FileRemove'),
}, async ({ client, requests }) => {
  const { files } = client.attachSession(SID);
  assert.equal(await files.write('a', Buffer.from([0, 0xff, 0x7a])), 3);
  assert.deepEqual(await files.read('a', { maxBytes: 1 }), { data: Buffer.from([0]), size: 3, truncated: true });
  assert.deepEqual(await files.list(), [{ name: 'a', type: 'file', size: 3 }]);
  await files.remove('a');
  assert.deepEqual(requests('FileWrite', 'FileRead', 'FileList', 'FileRemove'), [
    { type: 'FileWrite', session_id: SID, path: 'a', data: Buffer.from([0, 0xff, 0x7a]) },
    { type: 'FileRead', session_id: SID, path: 'a', max_bytes: 1 },
    { type: 'FileList', session_id: SID, path: '.' },
    { type: 'FileRemove', session_id: SID, path: 'a' },
  ]);
}));

test('session errors carry their codes; closing an ended session is quiet', { skip: fakeSkip }, withFake({
  Ping: pong('sessions'),
  SessionExecute: [failed('SessionExecute', codes.SESSION_BUSY, 'busy'),
    failed('SessionExecute', codes.SESSION_ENDED, 'session ended: oom')],
  SessionClose: failed('SessionClose', codes.SESSION_ENDED, 'session ended: oom'),
  SessionList: ok('SessionList', { sessions: [{ id: SID, created_at: 1, last_used_at: 2, executions: 3,
    busy: false, expires_at: 4 }] }),
}, async ({ client }) => {
  const session = client.attachSession(SID);
  await assert.rejects(session.run('1'), (err) => err instanceof LeewardError && err.code === 'E5002' && err.retryable);
  await assert.rejects(session.run('1'), (err) => err.code === 'E5003' && !err.retryable && /oom/.test(err.detail));
  await session.close();
  assert.deepEqual((await client.sessions()).map((s) => s.executions), [3]);
}));

// ---------------------------------------------------------------- a real daemon

const daemon = fakeSkip ? { skip: fakeSkip } : await startDaemon();
after(async () => {
  if (daemon.stop) await daemon.stop();
});

test('a session on the daemon keeps its state', { skip: daemon.skip || false }, async (t) => {
  const client = connect(daemon.socketPath);
  try {
    const offered = await client.features();
    const missing = ['sessions', 'display', 'files'].filter((f) => !offered.includes(f));
    if (missing.length > 0) {
      t.skip(`the daemon does not list ${missing.join(', ')} in Pong.features (sessions are issue 13, S1/S2)`);
      return;
    }
    const session = await client.openSession();
    await session.run('x = 1');
    const r = await session.run('x + 1');
    assert.equal(r.text, '2');
    assert.equal(r.executionCount, 2);
    await session.files.write('in.bin', Buffer.from([0, 0xff]));
    assert.deepEqual((await session.files.read('in.bin')).data, Buffer.from([0, 0xff]));
    await assert.rejects(session.files.read('../etc/passwd'), (err) => err.code === codes.BAD_PATH);
    await session.close();
    await assert.rejects(session.run('x'), (err) => err.code === codes.SESSION_ENDED && /closed/.test(err.detail));
  } finally {
    client.close();
  }
});
