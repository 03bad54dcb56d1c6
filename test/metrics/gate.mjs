// A module operator for the readiness test: its import waits for the file SLUICE_TEST_START_GATE (so the
// daemon stays "starting"), and each file it runs on completes only once the file `options.hold` exists
// (so a file stays in flight while the daemon drains). It lives inside the project so 'rxjs' resolves.
import { existsSync } from 'node:fs';
import { Observable } from 'rxjs';

const until = async (path) => {
  while (!existsSync(path)) await new Promise((r) => setTimeout(r, 20));
};

if (process.env.SLUICE_TEST_START_GATE !== undefined) await until(process.env.SLUICE_TEST_START_GATE);

export default function gate({ hold }) {
  return (rows$) =>
    new Observable((sub) => {
      const s = rows$.subscribe({
        next: (row) => sub.next(row),
        error: (e) => sub.error(e),
        complete: () => void until(hold).then(() => sub.complete()),
      });
      return () => s.unsubscribe();
    });
}
