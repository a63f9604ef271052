/** When model readers map files into memory instead of reading them (GGUF, safetensors). */
import { nativeBackend } from '../backend/native.js';

/** The native addon is loaded (it provides mmapRanges) and LLAMA2_MMAP is not 0. */
export function mmapByDefault(): boolean {
  return nativeBackend !== null && process.env['LLAMA2_MMAP'] !== '0';
}
