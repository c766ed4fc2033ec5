// Starts a real leeward daemon from this checkout for the tests:
// <repo>/.venv/bin/python -m leeward_daemon --socket <tmp>/s.sock --workers 2.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const leeward = require('../index.js');

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const START_WAIT_MS = 90_000; // bound on waiting for readiness, not a speed assertion

/**
 * Resolves to {socketPath, allowedDir, stop} once the daemon answers a ping,
 * or to {skip: reason} when none can start.
 */
export async function startDaemon() {
  const python = path.join(repoRoot, '.venv', 'bin', 'python');
  if (!fs.existsSync(python)) return { skip: `${python} not found (run \`make setup\` at the repo root)` };
  try {
    leeward.version();
  } catch (err) {
    return { skip: `libleeward cannot be loaded: ${err.message}` };
  }
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'leeward-node-test-')));
  const allowedDir = path.join(dir, 'allowed');
  fs.mkdirSync(allowedDir);
  // A root daemon runs each sandbox as an otherwise unused uid: rw mounts must let it write.
  fs.chmodSync(allowedDir, 0o777);
  const socketPath = path.join(dir, 's.sock');
  const logPath = path.join(dir, 'daemon.log');
  const log = fs.openSync(logPath, 'w');
  const child = spawn(python, ['-m', 'leeward_daemon', '--socket', socketPath, '--workers', '2',
    '--allow-path', allowedDir], { cwd: '/', stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited = null;
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = signal || code;
    resolve();
  }));
  child.on('error', (err) => { exited = err.message; });
  const onExit = () => { if (exited === null) child.kill('SIGKILL'); };
  process.on('exit', onExit); // never leave a daemon behind, even on a crash

  const logTail = () => {
    try {
      return fs.readFileSync(logPath, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exitPromise;
      clearTimeout(timer);
    }
    process.off('exit', onExit);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + START_WAIT_MS;
  let last = null;
  while (Date.now() < deadline) {
    if (exited !== null) {
      await stop();
      return { skip: `daemon exited (${exited}):\n${logTail()}` };
    }
    try {
      const client = leeward.connect(socketPath);
      try {
        client.ping();
        return { socketPath, allowedDir, stop };
      } finally {
        client.close();
      }
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  await stop();
  return { skip: `daemon did not answer within ${START_WAIT_MS} ms (last error: ${last && last.message}):\n${logTail()}` };
}
