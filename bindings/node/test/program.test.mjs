// Programs (argv jobs): client.run(argv), client.stream(argv), session.run(argv) against a
// real daemon; refusals before anything is sent.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startDaemon } from '../support/daemon.mjs';

const require = createRequire(import.meta.url);
const { connect, LeewardError, codes } = require('../index.js');

const daemon = await startDaemon(); // {skip: reason} when the library or the daemon cannot start
after(async () => {
  if (daemon.stop) await daemon.stop();
});

async function withClient(t, needed, fn) {
  const client = connect(daemon.socketPath);
  try {
    const offered = await client.features();
    const missing = needed.filter((f) => !offered.includes(f));
    if (missing.length > 0) {
      t.skip(`the daemon does not list ${missing.join(', ')} in Pong.features`);
      return;
    }
    await fn(client);
  } finally {
    client.close();
  }
}

test('run() gives the program stdin, env and files, and its exit code and collected files',
  { skip: daemon.skip || false }, (t) => withClient(t, ['argv', 'collect'], async (client) => {
    const result = await client.run(['sh', '-c', 'tr a-z A-Z; echo "$GREETING" >&2; sort in.txt > out.txt; exit 3'], {
      stdin: 'shout\n', env: { GREETING: 'hello' }, files: { 'in.txt': 'b\na\n' }, collect: ['out.txt'],
    });
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, 'SHOUT\n');
    assert.equal(result.stderr, 'hello\n');
    assert.deepEqual(result.files['out.txt'], Buffer.from('a\nb\n'));
    assert.equal(result.cancelled, false);
  }));

test('a program that is not there exits 127', { skip: daemon.skip || false },
  (t) => withClient(t, ['argv'], async (client) => {
    const result = await client.run(['no-such-program-here']);
    assert.equal(result.exitCode, 127);
    assert.match(result.stderr, /no-such-program-here/);
  }));

test('an aborted signal kills the program; stream(argv) sends its output as it arrives',
  { skip: daemon.skip || false }, (t) => withClient(t, ['argv', 'stream', 'cancel'], async (client) => {
    const run = client.stream(['sh', '-c', 'echo started; exec sleep 600'], { timeoutSecs: 120 });
    const events = [];
    for await (const event of run) {
      events.push(event);
      await run.cancel();
    }
    const result = await run.result;
    assert.equal(result.cancelled, true);
    assert.equal(result.timedOut, false);
    assert.deepEqual(events.map((e) => [e.kind, e.text]), [['stdout', 'started\n']]);

    const controller = new AbortController();
    const pending = client.run(['sh', '-c', 'exec sleep 600'], { timeoutSecs: 120, signal: controller.signal });
    controller.abort();
    assert.equal((await pending).cancelled, true);
  }));

test('refusals: a bare string, an empty argv, argv[0] empty, a daemon without argv', { skip: daemon.skip || false },
  (t) => withClient(t, ['argv'], async (client) => {
    await assert.rejects(client.run('echo hi'), TypeError);
    await assert.rejects(client.run([]), TypeError);
    assert.throws(() => client.stream([1]), TypeError);
    await assert.rejects(client.run(['']), (err) => err instanceof LeewardError && err.code === codes.OUT_OF_RANGE);
    client._features = []; // as a daemon without the feature answers Ping
    await assert.rejects(client.run(['true']),
      (err) => err instanceof LeewardError && err.code === codes.FEATURE_DISABLED);
  }));

test('session.run(argv) runs in the session sandbox beside its cells', { skip: daemon.skip || false },
  (t) => withClient(t, ['sessions', 'argv'], async (client) => {
    const session = await client.openSession();
    try {
      await session.run("open('t.txt', 'w').write('1\\n2\\n')");
      const result = await session.run(['wc', '-l', 't.txt'], { timeoutSecs: 60 });
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout, '2 t.txt\n');
      assert.equal(result.executionCount, 2);
      assert.equal(result.session.alive, true);
      assert.deepEqual(result.results, []); // no display for a program
      const streamed = session.stream(['cat'], { stdin: 'piped' });
      const chunks = [];
      streamed.on('stdout', (data) => chunks.push(data));
      assert.equal((await streamed.result).stdout, 'piped');
      assert.equal(Buffer.concat(chunks).toString(), 'piped');
    } finally {
      await session.close();
    }
  }));
