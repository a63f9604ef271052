/**
 * A SentencePiece vocabulary as every source provides it (tokenizer.model, tokenizer.json, GGUF
 * metadata, llama2.c tokenizer.bin): pieces, scores (BPE merge priority) and piece types.
 */

/** SentencePiece piece types (sentencepiece_model.proto ModelProto.SentencePiece.Type). */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceTypeId = (typeof PieceType)[keyof typeof PieceType];

export interface SpmVocab {
  pieces: string[];
  scores: Float32Array;
  types: Uint8Array; // PieceType per id
  bosId: number; // -1 when absent
  eosId: number;
  unkId: number;
  padId: number;
  /** prepend "▁" to the input (SentencePiece add_dummy_prefix; true for Llama) */
  addDummyPrefix: boolean;
  /** the source's own default for adding BOS when encoding (GGUF add_bos_token) */
  addBos: boolean;
  addEos: boolean;
}
