'use strict';
// The JSON form of wire messages that leeward_call takes and gives (include/leeward.h):
// a msgpack bin value is {"$bytes": "<base64>"} both ways. Here a Buffer or Uint8Array
// becomes that object, and such an object in a reply becomes a Buffer.

const { LeewardError, codes } = require('./errors');

const BYTES_KEY = '$bytes';

function toWire(value) {
  if (value instanceof Uint8Array) return { [BYTES_KEY]: Buffer.from(value.buffer, value.byteOffset, value.length).toString('base64') };
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = toWire(item);
    return out;
  }
  return value;
}

/** JSON text of a request; Buffers and Uint8Arrays are written {"$bytes": base64}. */
function stringify(request) {
  let text;
  try {
    text = JSON.stringify(toWire(request));
  } catch (err) {
    // A cycle or a BigInt: the same code the library gives text that is not JSON.
    throw new LeewardError(codes.FRAME_UNDECODABLE, `request cannot be written as JSON: ${err.message}`);
  }
  if (text === undefined) throw new LeewardError(codes.FRAME_NOT_A_MAP, 'request must be an object');
  return text;
}

/** A reply or event from JSON text; {"$bytes": base64} becomes a Buffer. */
function parse(text) {
  return JSON.parse(text, (key, value) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === BYTES_KEY && typeof value[BYTES_KEY] === 'string') {
        return Buffer.from(value[BYTES_KEY], 'base64');
      }
    }
    return value;
  });
}

module.exports = { stringify, parse };
