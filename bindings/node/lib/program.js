'use strict';
// What a job runs: Python source (`code`) or a program (`argv`, protocol v2), as the
// request field the daemon expects.

const { LeewardError, codes } = require('./errors');
const native = require('./native');

/**
 * {code} for a string, {argv} for an array of strings, checked at once (a bare string
 * as argv would be Python source; an empty or mixed array names no program).
 */
function programFields(program) {
  if (!Array.isArray(program)) return { code: native.checkString(program, 'code') };
  if (program.length === 0 || !program.every((arg) => typeof arg === 'string')) {
    throw new TypeError("argv must be a non-empty array of strings, e.g. ['sh', '-c', 'echo hi']");
  }
  return { argv: [...program] };
}

/**
 * Resolves to `request` once the daemon can run it: an argv job needs a daemon whose Ping
 * lists "argv", else LeewardError E2010 (one without it would refuse the field as
 * unknown, E2004, which names the wrong cause).
 */
async function runnable(client, request) {
  if (request.argv !== undefined && !(await client.cachedFeatures()).includes('argv')) {
    throw new LeewardError(codes.FEATURE_DISABLED, "this daemon does not run programs (its Ping does not list 'argv')");
  }
  return request;
}

module.exports = { programFields, runnable };
