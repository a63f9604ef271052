/**
 * When and how model readers map files into memory instead of reading them (GGUF, safetensors,
 * torch.save): through the native addon's private file mapping (src/util/addon.ts), never through
 * the compute backend.
 */
import { mmapFunctions } from '../util/addon.js';
import { Llama2Error } from '../util/errors.js';

/** The native addon is loaded (it provides the mapping) and LLAMA2_MMAP is not 0. */
export function mmapByDefault(): boolean {
  return mmapFunctions() !== null && process.env['LLAMA2_MMAP'] !== '0';
}

/** A reader's `mmap` option resolved: asked for (or the default) and possible. */
export function useMmap(option: boolean | undefined): boolean {
  return (option ?? mmapByDefault()) && mmapFunctions() !== null;
}

/**
 * One private mapping of the file, returned as one ArrayBuffer per [offset, offset+length) range
 * (Node caps a single external buffer at 4 GiB). Only call it when useMmap() said yes.
 */
export function mapRanges(path: string, ranges: ReadonlyArray<{ offset: number; length: number }>): ArrayBuffer[] {
  const m = mmapFunctions();
  if (!m) throw new Error('mapRanges: the native addon is not loaded (check useMmap first)');
  try {
    return m.mmapRanges(path, Float64Array.from(ranges, (r) => r.offset), Float64Array.from(ranges, (r) => r.length));
  } catch (e) {
    // the file was readable a moment ago: what fails here is the mapping (address space, memory limits)
    const why = e instanceof Error ? e.message.replace(/^mmapRanges [^:]*: /, '') : String(e);
    throw new Llama2Error(`${path}: cannot map the file into memory (${why}); set LLAMA2_MMAP=0 to read it into memory instead`);
  }
}
