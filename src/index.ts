// The library API: compose your own pipeline from the same pieces the daemon uses.
export type { Row, RowBatch, Rejection } from './row.js';
export { FileContext, type RowCounts } from './file-context.js';
export { FlowGate } from './flow-gate.js';
export { fileBytes, type FileBytesOptions, type OpenFile } from './sources/file-bytes.js';
export { parseCsv, type ParseCsvOptions } from './operators/parse-csv.js';
export { CsvRecordReader, type CsvReadOptions, type RecordHandler, DEFAULT_MAX_RECORD_SIZE } from './csv/record-reader.js';
export { dropNulls, nullRowTest, PANDAS_NULL_VALUES, type DropNullsOptions } from './operators/drop-nulls.js';
export { select } from './operators/select.js';
export { rename } from './operators/rename.js';
export { cast, rowToCsv, type CastSpec, type CastColumnSpec, type CastOnError, type CastOptions } from './operators/cast.js';
export { CAST_TYPE_NAMES, CONVERTERS, parseDecimal, type CastType, type Converter } from './operators/cast-values.js';
export { filter, type FilterPredicate, type FilterOp, type FilterValue } from './operators/filter.js';
export { dedupe, type DedupeOptions } from './operators/dedupe.js';
export { addColumn, type AddColumnOptions, type AddColumnValue } from './operators/add-column.js';
export {
  loadModuleOperator,
  type LoadModuleOperatorOptions,
  type ModuleOperator,
  type ModuleOperatorEnv,
  type ModuleOperatorFactory,
} from './operators/load-module-operator.js';
export { batch, type BatchOperatorOptions } from './operators/batch.js';
export { BatchBuffer, normalizeBatchOptions, type BatchOptions } from './operators/batch-policy.js';
export { rowOperator, columnIndexes, type BoundRowFunction } from './operators/row-operator.js';
export { csvFileSink, type CsvFileSinkOptions } from './sinks/csv-file.js';
export { RejectsFile } from './sinks/rejects-file.js';
export { AtomicFile, type AtomicFileOptions } from './fs/atomic-file.js';
export type { OutputDriver, RowSink, SinkFactory, SinkResult, StagedOutput } from './outputs/driver.js';
export { processFile, type FileReport, type PipelineSettings, type PipelineHooks } from './pipeline/process-file.js';
export { Daemon } from './daemon/daemon.js';
export type { DaemonHooks } from './daemon/hooks.js';
export { loadConfig, parseConfig, type SluiceConfig, type LoadOptions } from './config/load.js';
export { configSchema, configJsonSchema, type ConfigFile, type PipelineConfig, type StepConfig } from './config/schema.js';
export { decodeText, type InputEncoding } from './operators/decode-text.js';
export { ndjsonFileSink } from './sinks/ndjson-file.js';
export { type ParquetFileSinkOptions, parquetFileSink } from './sinks/parquet-file.js';
export { postgresSink, type PostgresOutputOptions } from './sinks/postgres.js';
export { OUTPUT_DRIVERS, outputDriver } from './outputs/registry.js';
export { buildSteps } from './pipeline/steps.js';
export { createRouter } from './pipeline/route.js';
export { preview, type PreviewResult } from './pipeline/preview.js';
export { SluiceError, ERROR_CODES, type ErrorCode } from './errors.js';
export { createLogger, silentLogger, type Logger } from './log.js';
