/** The viewer's limits on uploads, on the prediction queue and on slow clients. */
import { checkInteger, checkNumber } from '../checks';

/** Limits of the viewer. */
export interface ServeLimits {
  /** Largest upload in bytes (default 20 MB). */
  maxUploadBytes: number;
  /** Largest image in pixels, read from its header before decoding (default 4096 x 4096). */
  maxPixels: number;
  /** Predictions that may wait behind the running one; more are answered 503 (default 4). */
  maxWaiting: number;
  /** Seconds a client has to send a request's headers; a slower one is answered 408 and cut off (default 30). */
  headersSeconds: number;
  /** Seconds a client has to send a whole request, body included (default 120; at least headersSeconds). */
  requestSeconds: number;
}

/** Default {@link ServeLimits}. */
export const DEFAULT_LIMITS: Readonly<ServeLimits> = {
  maxUploadBytes: 20 * 1024 * 1024,
  maxPixels: 4096 * 4096,
  maxWaiting: 4,
  headersSeconds: 30,
  requestSeconds: 120,
};

/** limits with the defaults filled in, each checked. */
export function checkedLimits(limits: Partial<ServeLimits> = {}): ServeLimits {
  const all = { ...DEFAULT_LIMITS, ...limits };
  return {
    maxUploadBytes: checkInteger(all.maxUploadBytes, 'limits.maxUploadBytes', 1),
    maxPixels: checkInteger(all.maxPixels, 'limits.maxPixels', 1),
    maxWaiting: checkInteger(all.maxWaiting, 'limits.maxWaiting', 0),
    headersSeconds: checkNumber(all.headersSeconds, 'limits.headersSeconds', 0.001),
    requestSeconds: checkNumber(all.requestSeconds, 'limits.requestSeconds', all.headersSeconds),
  };
}
