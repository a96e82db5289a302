/** The viewer's limits on uploads and on the prediction queue. */
import { checkInteger } from '../checks';

/** Limits of the viewer. */
export interface ServeLimits {
  /** Largest upload in bytes (default 20 MB). */
  maxUploadBytes: number;
  /** Largest image in pixels, read from its header before decoding (default 4096 x 4096). */
  maxPixels: number;
  /** Predictions that may wait behind the running one; more are answered 503 (default 4). */
  maxWaiting: number;
}

/** Default {@link ServeLimits}. */
export const DEFAULT_LIMITS: Readonly<ServeLimits> = {
  maxUploadBytes: 20 * 1024 * 1024,
  maxPixels: 4096 * 4096,
  maxWaiting: 4,
};

/** limits with the defaults filled in, each checked. */
export function checkedLimits(limits: Partial<ServeLimits> = {}): ServeLimits {
  const all = { ...DEFAULT_LIMITS, ...limits };
  return {
    maxUploadBytes: checkInteger(all.maxUploadBytes, 'limits.maxUploadBytes', 1),
    maxPixels: checkInteger(all.maxPixels, 'limits.maxPixels', 1),
    maxWaiting: checkInteger(all.maxWaiting, 'limits.maxWaiting', 0),
  };
}
