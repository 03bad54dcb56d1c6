// Types of the untyped snappy compressor the Parquet encoder loads for `compression: snappy`.
declare module 'snappyjs' {
  /** Snappy raw-format compression of a whole buffer. */
  export function compress(data: Uint8Array): Uint8Array;
}
