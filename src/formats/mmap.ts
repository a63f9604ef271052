/** When model readers map files into memory instead of reading them (GGUF, safetensors, torch.save). */
import { nativeBackend } from '../backend/native.js';

/** The native addon is loaded (it provides mmapRanges) and LLAMA2_MMAP is not 0. */
export function mmapByDefault(): boolean {
  return nativeBackend !== null && process.env['LLAMA2_MMAP'] !== '0';
}

/** A reader's `mmap` option resolved: asked for (or the default) and possible. */
export function useMmap(option: boolean | undefined): boolean {
  return (option ?? mmapByDefault()) && nativeBackend !== null;
}
