// Streaming and cancel: client.stream() / session.stream() (async iterator and
// EventEmitter), AbortSignal -> Cancel, client.cancel(), against a real daemon.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startDaemon } from '../support/daemon.mjs';

const require = createRequire(import.meta.url);
const { connect, Execution, version } = require('../index.js');

let skip = false;
try {
  version();
} catch (err) {
  skip = `libleeward cannot be loaded: ${err.message}`;
}
const daemon = skip ? { skip } : await startDaemon();
after(async () => {
  if (daemon.stop) await daemon.stop();
});

const JOB = "import sys\nprint('out 1', flush=True)\nprint('err', file=sys.stderr, flush=True)\nprint('out 2')\n6 * 7";
const FOREVER = "import time\nprint('started', flush=True)\ntime.sleep(600)";

async function withClient(t, fn) {
  const client = connect(daemon.socketPath);
  try {
    const offered = await client.features();
    if (!offered.includes('stream') || !offered.includes('cancel')) {
      t.skip('the daemon does not list stream and cancel in Pong.features');
      return;
    }
    await fn(client);
  } finally {
    client.close();
  }
}

test('events arrive through the async iterator and add up to the result', { skip: daemon.skip || false },
  (t) => withClient(t, async (client) => {
    const run = client.stream(JOB, { display: true, executionId: 'node-1' });
    assert.ok(run instanceof Execution);
    assert.equal(run.executionId, 'node-1');
    const events = [];
    for await (const event of run) events.push(event);
    const result = await run.result;
    const joined = (kind) => Buffer.concat(events.filter((e) => e.kind === kind).map((e) => e.data));
    assert.deepEqual(joined('stdout'), result.stdoutBytes);
    assert.equal(result.stdout, 'out 1\nout 2\n');
    assert.deepEqual(joined('stderr'), result.stderrBytes);
    assert.deepEqual(events.filter((e) => e.kind === 'display').map((e) => e.data), result.results);
    assert.ok(events.every((e) => e.executionId === 'node-1'));
    assert.equal(result.executionId, 'node-1');
    assert.equal(result.cancelled, false);
  }));

test('listeners get the same events', { skip: daemon.skip || false }, (t) => withClient(t, async (client) => {
  const run = client.stream(JOB);
  const out = [];
  run.on('stdout', (data) => out.push(data));
  const result = await run.result;
  assert.deepEqual(Buffer.concat(out), result.stdoutBytes);
}));

test('aborting the signal cancels the job', { skip: daemon.skip || false }, (t) => withClient(t, async (client) => {
  const controller = new AbortController();
  const run = client.stream(FOREVER, { signal: controller.signal, timeoutSecs: 120 });
  run.once('stdout', () => controller.abort());
  const result = await run.result;
  assert.equal(result.cancelled, true);
  assert.ok(result.exitCode < 0);
  assert.equal(result.stdout, 'started\n');
  assert.equal(await client.cancel(run.executionId), false); // over
}));

test('a cancelled cell gets KeyboardInterrupt and the session lives', { skip: daemon.skip || false },
  (t) => withClient(t, async (client) => {
    const session = await client.openSession();
    try {
      await session.run('kept = 1');
      const run = session.stream(FOREVER, { timeoutSecs: 120 });
      for await (const event of run) {
        assert.equal(event.text, 'started\n');
        assert.equal(await client.cancel(run.executionId), true); // from the client, by id
        break;
      }
      const result = await run.result;
      assert.equal(result.cancelled, true);
      assert.equal(result.error.name, 'KeyboardInterrupt');
      assert.equal(result.session.alive, true);
      const controller = new AbortController();
      controller.abort();
      const aborted = await session.run(FOREVER, { signal: controller.signal, timeoutSecs: 120 });
      assert.equal(aborted.cancelled, true); // aborted before it was sent: cancelled once it arrived
      assert.equal((await session.run('kept')).text, '1');
    } finally {
      await session.close();
    }
  }));
