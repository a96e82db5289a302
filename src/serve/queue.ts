/**
 * One job at a time, the others waiting in order, with a limit: the viewer's per-model queue
 * of predictions. A model is run by one prediction at a time (each on the torch thread, so
 * the event loop stays free); when the queue is full a job is refused at once with 503
 * instead of piling up memory and latency.
 */
import { HttpError } from './upload';

/** What the queue is doing, as /api/info reports it. */
export interface QueueState {
  running: number;
  waiting: number;
  maxWaiting: number;
}

/** Runs jobs one at a time; at most maxWaiting wait behind the running one. */
export class JobQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #running = 0;
  #waiting = 0;

  constructor(readonly maxWaiting: number) {}

  /** What is running and waiting now. */
  get state(): QueueState {
    return { running: this.#running, waiting: this.#waiting, maxWaiting: this.maxWaiting };
  }

  /** Runs job after those already queued; an HttpError 503 when maxWaiting are already waiting. */
  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running + this.#waiting > this.maxWaiting) {
      return Promise.reject(
        new HttpError(503, `busy: ${this.#running} prediction running and ${this.#waiting} waiting; try again shortly`),
      );
    }
    this.#waiting += 1;
    const result = this.#tail.then(async () => {
      this.#waiting -= 1;
      this.#running += 1;
      try {
        return await job();
      } finally {
        this.#running -= 1;
      }
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
