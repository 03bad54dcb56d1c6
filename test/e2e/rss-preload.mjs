// Loaded with `node --import` by tests: reports the process's peak resident memory (KiB) on exit.
process.on('exit', () => process.stderr.write(`\nmaxrss-kib:${process.resourceUsage().maxRSS}\n`));
