// The baseline a Node user would write: csv-parse -> drop rows with an empty field -> csv-stringify, streamed.
// node bench/bare-pipeline.mjs IN.csv OUT.csv
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify';

const [input, output] = process.argv.slice(2);
const dropNulls = new Transform({
  objectMode: true,
  transform(row, _enc, cb) {
    cb(null, row.includes('') ? undefined : row);
  },
});
await pipeline(createReadStream(input), parse(), dropNulls, stringify(), createWriteStream(output));
