/**
 * Loads the C addon (build/Release/llama2_native.node, built by node-gyp from native/) once, for
 * every module that needs it: the compute backend (src/backend/native.ts wraps its kernels) and
 * the model-file readers (src/formats/mmap.ts uses its file mapping). Keeping the loading here lets
 * the readers map files without importing the compute backend.
 *
 * Loading never throws: `rawAddon()` is null when the addon is missing or fails to load, and
 * `addonLoadError()` says why in one line. LLAMA2_NATIVE_PATH names the .node file explicitly.
 *
 * What it is not: the kernel interface (backend/native.ts) or a place for kernel code.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON_FILE = 'llama2_native.node';

/** The addon next to the package root (the first directory up from here with a package.json). */
function findAddon(): string {
  const explicit = process.env['LLAMA2_NATIVE_PATH'];
  if (explicit) return explicit;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      for (const sub of ['Release', 'Debug']) {
        const p = join(dir, 'build', sub, ADDON_FILE);
        if (existsSync(p)) return p;
      }
      throw new Error(`${join(dir, 'build', 'Release', ADDON_FILE)} does not exist (build it with: npm run build:native)`);
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${dirname(fileURLToPath(import.meta.url))} to find build/Release/${ADDON_FILE} in`);
    dir = up;
  }
}

let loaded: { addon: object | null; error: string | null } | null = null;

function load(): { addon: object | null; error: string | null } {
  if (!loaded) {
    try {
      loaded = { addon: createRequire(import.meta.url)(findAddon()) as object, error: null };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      loaded = { addon: null, error: msg.split('\n')[0] ?? msg };
    }
  }
  return loaded;
}

/** The addon's exports (the caller types them), or null when it could not be loaded. */
export function rawAddon(): object | null {
  return load().addon;
}

/** Why the addon did not load (one line), or null when it did. */
export function addonLoadError(): string | null {
  return load().error;
}

interface MmapExports {
  mmapFile(path: string): ArrayBuffer;
  mmapRanges(path: string, offsets: Float64Array, lengths: Float64Array): ArrayBuffer[];
}

/** The addon's file-mapping functions, or null without the addon. */
export function mmapFunctions(): MmapExports | null {
  const a = rawAddon() as Partial<MmapExports> | null;
  return a && typeof a.mmapFile === 'function' && typeof a.mmapRanges === 'function' ? (a as MmapExports) : null;
}
