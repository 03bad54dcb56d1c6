// A batch job's metrics as a file for node_exporter's textfile collector: written whole under a temporary
// name in the same folder, then renamed over the last run's, so the collector never reads half a file
// (it reads only names ending in .prom; the temporary name does not).
import { rename, unlink, writeFile } from 'node:fs/promises';

export async function writeTextfile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
