/**
 * Loads ioredis for the stores ringway makes from a URL, without the cost its loading puts on
 * every string in the process.
 *
 * ioredis 6's `built/resp/verbatim-string.js` declares `class VerbatimString extends String`.
 * Once any object has `String.prototype` as its prototype, V8 11.3 (Node 20) stops inlining
 * `String.prototype` methods called on string primitives, in every module, for the rest of
 * the process: `s.charCodeAt(i)` loops run about 5x slower, `s.indexOf(x)` about 2x
 * (`npm run bench stringPrototype`). String-heavy application code pays most; the gateway's
 * proxy path, with some tens of string calls per request, measured the same either way.
 *
 * ioredis never makes a `VerbatimString`: both of its reply mappings decode verbatim strings
 * to Buffers, and the class is not exported. The decoder only compares a mapping's entry
 * with the class. So, before ioredis loads, this puts a stand-in module in Node's module
 * cache under that file's path: a class of the same name and shape that does not extend
 * `String`. Nothing ioredis does can tell the two apart.
 *
 * The stand-in only goes in when:
 * - ioredis has not been loaded yet (an app that loaded it first has already paid, and its
 *   module graph is left as it is);
 * - the installed ioredis is a 6.0.x, whose decoder and reply mappings were read for the
 *   above (a later version might make the class, and then needs a new look);
 * - the file exists where ioredis 6 keeps it, and nothing has loaded it yet.
 *
 * Otherwise ioredis loads untouched. Set `RINGWAY_IOREDIS_PRISTINE=1` to load it untouched
 * always.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname, join } from 'node:path';

type Ioredis = typeof import('ioredis');

/** The stand-in for ioredis' `VerbatimString`: the same fields, no `String` in its chain. */
export class VerbatimString {
  readonly format: string;
  readonly value: string;
  constructor(format: string, value: string) {
    this.format = format;
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
  valueOf(): string {
    return this.value;
  }
}

let loaded: Ioredis | undefined;

/** What {@link loadIoredis} did, for tests and diagnostics. */
export let standIn: 'installed' | 'already-loaded' | 'not-found' | 'other-version' | 'disabled' | undefined;

/** ioredis, loaded once, with the stand-in when it can go in (see the module comment). */
export function loadIoredis(): Ioredis {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  standIn = installStandIn(require);
  loaded = require('ioredis') as Ioredis;
  return loaded;
}

function installStandIn(require: NodeJS.Require): typeof standIn {
  if (process.env.RINGWAY_IOREDIS_PRISTINE === '1') return 'disabled';
  let main: string;
  try {
    main = require.resolve('ioredis');
  } catch {
    return 'not-found'; // the require below reports it
  }
  if (require.cache[main] !== undefined) return 'already-loaded';
  if (!/^6\.0\.\d+$/.test(versionOf(join(dirname(main), '..', 'package.json')))) return 'other-version';
  const file = join(dirname(main), 'resp', 'verbatim-string.js');
  if (!existsSync(file)) return 'not-found';
  if (require.cache[file] !== undefined) return 'already-loaded';
  const mod = new Module(file);
  mod.filename = file;
  mod.paths = [];
  mod.exports = { __esModule: true, VerbatimString };
  mod.loaded = true;
  require.cache[file] = mod;
  return 'installed';
}

function versionOf(packageJson: string): string {
  try {
    const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: unknown }).version;
    return typeof version === 'string' ? version : '';
  } catch {
    return '';
  }
}
