// What the readers' operators share: chunks go into a record reader, its records come out as rows, and an
// error thrown by the reader (a file-level refusal) errors the stream.

/** A reader fed chunk by chunk (CSV, JSON lines). */
export interface ChunkReader {
  write(chunk: Buffer): void;
  end(): void;
}

/** Feeds `source` chunks to `reader` until the end, for a subscriber that gets what the reader's handler emits. */
export function feedReader(
  source: { subscribe(o: { next(c: Buffer): void; error(e: unknown): void; complete(): void }): { unsubscribe(): void } },
  subscriber: { closed: boolean; error(e: unknown): void; complete(): void },
  reader: ChunkReader,
): { unsubscribe(): void } {
  return source.subscribe({
    next(chunk) {
      if (subscriber.closed) return;
      try {
        reader.write(chunk);
      } catch (err) {
        subscriber.error(err);
      }
    },
    error(err) {
      subscriber.error(err);
    },
    complete() {
      if (subscriber.closed) return;
      try {
        reader.end();
      } catch (err) {
        subscriber.error(err);
        return;
      }
      subscriber.complete();
    },
  });
}
