/** The pino-compatible logger subset this package writes to; pass a pino child logger. */
export interface ClusterLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => undefined;

/** A logger that drops everything (the default). */
export const silentLogger: ClusterLogger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
});
