/**
 * One client connection: frames in, handlers run (possibly out of order), responses out in
 * request order. Malformed input, an unknown API key or an unadvertised version closes the
 * connection after one log line; ApiVersions of an unknown version gets a v0 answer instead,
 * as Kafka does, so that clients can negotiate (KIP-511).
 *
 * Every frame draws on the broker-wide request budget (`request-budget.ts`) from the moment
 * its length is read until its request has been handled; a frame the budget cannot cover
 * stops the connection's reading until it can. Once admitted, a frame's body must arrive
 * within `--request-receive-timeout-ms`, or the connection is closed and its bytes returned:
 * otherwise a client could hold budget for ever by sending part of a frame and then a byte
 * now and then.
 */
import type { Socket } from 'node:net';
import {
  ApiKey,
  ErrorCode,
  FrameDecoder,
  UnsupportedVersionError,
  decodeRequestBody,
  decodeRequestHeader,
  encodeResponse,
  type RequestHeader,
} from '../../wire/index.js';
import { BrokerError } from '../errors.js';
import { NO_RESPONSE, zoneFromClientId, type ConnectionInfo, type Handler } from '../handlers/handler.js';
import { apiVersionsKeys } from '../handlers/18-api-versions.js';
import type { Services } from '../handlers/services.js';
import type { Logger } from '../observability/logger.js';
import { freeNow } from './free-now.js';
import type { BudgetAccount, RequestBudget } from './request-budget.js';

/** Handlers by API key, as the registry provides them. */
export type HandlerTable = ReadonlyMap<number, Handler>;

/** The per-connection limits (see `src/config.ts` for each setting). */
export interface ConnectionLimitsConfig {
  readonly socketRequestMaxBytes: number;
  readonly connectionsMaxIdleMs: number;
  readonly requestReceiveTimeoutMs: number;
  readonly maxInflightRequests: number;
  readonly maxQueuedResponseBytes: number;
}

/** What a connection is given: its limits, the handler table and what handlers may use. */
export interface ConnectionDeps {
  readonly limits: ConnectionLimitsConfig;
  readonly handlers: HandlerTable;
  readonly services: Services;
  /** The broker-wide bound on request bytes (see request-budget.ts). */
  readonly budget: RequestBudget;
  readonly log: Logger;
}

let nextConnectionId = 1;

/**
 * A response slot: filled when its handler completes. `null` chunks mean "answer nothing"
 * (acks=0 Produce) but the slot still holds its place in the order.
 */
interface Slot {
  done: boolean;
  chunks: Buffer[] | null;
  /** Request bytes held in the budget until the handler completes. */
  bytes: number;
}

export class Connection {
  readonly info: ConnectionInfo;
  readonly #socket: Socket;
  readonly #limits: ConnectionLimitsConfig;
  readonly #services: Services;
  readonly #handlers: HandlerTable;
  readonly #log: Logger;
  readonly #decoder: FrameDecoder;
  /** Slots in request order; the head is the next response to write. */
  readonly #slots: Slot[] = [];
  readonly #budget: BudgetAccount;
  #inflight = 0;
  #paused = false;
  /** stopReading() was called (the broker is draining). */
  #stopped = false;
  /** Frames are being handled right now (a budget grant must not start another pass). */
  #dispatching = false;
  /** The frame held for the budget has been granted and is to be taken from the decoder. */
  #granted = false;
  #closed = false;
  #idleTimer: NodeJS.Timeout | null = null;
  /**
   * The receive deadline of the frame whose body is arriving, made on the first frame that
   * spans reads and re-armed for each later one; it may fire after its frame has completed,
   * and then does nothing.
   */
  #receiveTimer: NodeJS.Timeout | null = null;
  /** An admitted frame's body is arriving, and #receiveTimer runs for it. */
  #receiving = false;
  readonly #onClose: (c: Connection) => void;

  constructor(socket: Socket, deps: ConnectionDeps, onClose: (c: Connection) => void) {
    this.#socket = socket;
    this.#limits = deps.limits;
    this.#services = deps.services;
    this.#handlers = deps.handlers;
    this.#onClose = onClose;
    this.info = { id: nextConnectionId++, remoteAddress: `${socket.remoteAddress}:${socket.remotePort}`, zone: null, close: (reason) => this.close(reason) };
    this.#log = deps.log.child({ conn: this.info.id, remote: this.info.remoteAddress });
    this.#budget = deps.budget.open(() => this.#onBudgetGranted());
    this.#decoder = new FrameDecoder(deps.limits.socketRequestMaxBytes, (size) => this.#admit(size));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#updateReading());
    socket.on('error', (err) => this.#log.debug({ err }, 'socket error'));
    socket.on('close', () => this.#finish());
    this.#touch();
  }

  /** Requests received and not yet answered. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Closes the connection now (responses not yet written are dropped). */
  close(reason: string): void {
    if (this.#closed) return;
    this.#log.debug({ reason }, 'closing connection');
    this.#socket.destroy();
    this.#finish();
  }

  /** Stops reading new requests; in-flight ones still complete. */
  stopReading(): void {
    this.#stopped = true;
    this.#updateReading();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#receiveTimer) clearTimeout(this.#receiveTimer);
    // Everything this connection reserved goes back now, partial frame included; handlers
    // still running for it keep their frames until they finish, but their answers are
    // dropped, and what they keep (the ingest buffer, caches) has bounds of its own.
    this.#budget.close();
    // A partial frame (up to socket.request.max.bytes) is freed now, not at the next full GC.
    const partial = this.#decoder.clear();
    if (partial !== null) freeNow(partial);
    this.#onClose(this);
  }

  /**
   * Marks activity for the idle check. Every read counts, a partial frame's too: a frame that
   * never completes is bounded by its receive deadline instead, so this timer only judges the
   * silence between requests. A client with a request in flight (a consumer's long-poll Fetch)
   * is never idle, however long the request takes.
   */
  #touch(): void {
    if (this.#idleTimer) this.#idleTimer.refresh();
    else {
      this.#idleTimer = setTimeout(() => {
        // A connection waiting for the request budget is silent because the broker stopped
        // reading it, not because the client went quiet.
        if (this.#inflight === 0 && !this.#budget.waiting) this.close('idle');
        else this.#touch();
      }, this.#limits.connectionsMaxIdleMs);
      this.#idleTimer.unref();
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    this.#touch();
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'bad frame; closing connection');
      this.close('bad frame');
      return;
    }
    // Any frame completed by this read was the one whose deadline ran, if one did.
    this.#watchReceive(frames.length > 0);
    this.#dispatch(frames);
  }

  /** Admission of a frame whose length was just read: reserve its bytes, or wait for them. */
  #admit(size: number): boolean {
    if (this.#budget.reserve(size)) return true;
    this.#updateReading();
    return false;
  }

  /**
   * Runs after the decoder has taken bytes or admitted a held frame: starts the receive
   * deadline when an admitted frame's body is still arriving and either no deadline runs or
   * `newFrame` says the frame it ran for has completed; stops it when no body is arriving.
   * A frame that arrives within one read never gets here with a body arriving, so it costs
   * one check per read and no timer work.
   */
  #watchReceive(newFrame: boolean): void {
    if (this.#decoder.receivingFrameBytes < 0) {
      this.#receiving = false;
      return;
    }
    if (this.#receiving && !newFrame) return;
    this.#receiving = true;
    if (this.#receiveTimer) {
      // One timer per connection, re-armed from now (whether still pending or already fired).
      this.#receiveTimer.refresh();
    } else {
      this.#receiveTimer = setTimeout(() => this.#onReceiveDeadline(), this.#limits.requestReceiveTimeoutMs);
      this.#receiveTimer.unref();
    }
  }

  #onReceiveDeadline(): void {
    if (this.#closed || !this.#receiving) return;
    // The clock runs even while this connection's reading is paused for its own in-flight
    // requests or unread responses: the client decides how long those take (a long-poll
    // Fetch may ask to wait for days), so pausing the clock would reopen the hole. Clients
    // give up on requests sooner themselves (request.timeout.ms, 30 s by default).
    this.#log.warn(
      {
        frameBytes: this.#decoder.receivingFrameBytes,
        receivedBytes: this.#decoder.receivedFrameBytes,
        timeoutMs: this.#limits.requestReceiveTimeoutMs,
      },
      'request frame not received within --request-receive-timeout-ms of its admission; closing connection and freeing its request memory',
    );
    this.close('request receive timeout');
  }

  #onBudgetGranted(): void {
    this.#granted = true;
    if (!this.#dispatching) this.#dispatch([]);
  }

  /** Handles frames, then those behind a frame the budget has granted meanwhile. */
  #dispatch(frames: Buffer[]): void {
    this.#dispatching = true;
    try {
      for (;;) {
        for (const frame of frames) {
          if (this.#closed) return;
          this.#onFrame(frame);
        }
        if (!this.#granted || this.#closed) break;
        this.#granted = false;
        try {
          frames = this.#decoder.admitHeld();
        } catch (err) {
          this.#log.warn({ err: (err as Error).message }, 'bad frame; closing connection');
          this.close('bad frame');
          return;
        }
        // The held frame has just been admitted: its deadline starts now, not when its length
        // arrived, since the wait for the budget was the broker's doing.
        this.#watchReceive(true);
      }
    } finally {
      this.#dispatching = false;
    }
    this.#updateReading();
  }

  #onFrame(frame: Buffer): void {
    let header: RequestHeader;
    let bodyOffset: number;
    try {
      ({ header, bodyOffset } = decodeRequestHeader(frame));
    } catch (err) {
      if (err instanceof UnsupportedVersionError && err.apiKey === ApiKey.ApiVersions && frame.length >= 8) {
        this.#budget.release(frame.length);
        this.#answerUnsupportedApiVersions(frame.readInt32BE(4));
        return;
      }
      this.#log.warn({ err: (err as Error).message }, 'unreadable request header; closing connection');
      this.close('bad header');
      return;
    }
    const handler = this.#handlers.get(header.apiKey);
    const range = handler ? (handler.advertised ?? handler.versions) : null;
    if (!handler || !range || header.apiVersion < range[0] || header.apiVersion > range[1]) {
      if (header.apiKey === ApiKey.ApiVersions) {
        this.#budget.release(frame.length);
        this.#answerUnsupportedApiVersions(header.correlationId);
        return;
      }
      this.#log.warn(
        { apiKey: header.apiKey, apiVersion: header.apiVersion, clientId: header.clientId },
        handler ? 'request version not advertised; closing connection' : 'request for an API Strata does not serve; closing connection',
      );
      this.close('unsupported api');
      return;
    }
    let body: unknown;
    try {
      body = decodeRequestBody(header.apiKey as never, header.apiVersion, frame, bodyOffset);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, apiKey: header.apiKey, apiVersion: header.apiVersion }, 'malformed request; closing connection');
      this.close('malformed request');
      return;
    }
    if (this.info.zone === null && header.clientId !== null) this.info.zone = zoneFromClientId(header.clientId);
    const slot: Slot = { done: false, chunks: null, bytes: frame.length };
    this.#slots.push(slot);
    this.#inflight++;
    if (this.#log.isLevelEnabled('debug')) {
      this.#log.debug({ apiKey: header.apiKey, apiVersion: header.apiVersion, correlationId: header.correlationId, clientId: header.clientId }, 'request');
    }
    const ctx = { header, connection: this.info, services: this.#services, log: this.#log };
    let result: unknown;
    try {
      result = handler.handle(ctx, body as never);
    } catch (err) {
      this.#handlerFailed(header, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (r) => this.#complete(slot, header, r),
        (err: unknown) => this.#handlerFailed(header, err),
      );
    } else {
      this.#complete(slot, header, result);
    }
  }

  #handlerFailed(header: RequestHeader, err: unknown): void {
    // Handlers map every expected failure to Kafka error codes in their response; reaching
    // here is a bug. Closing is the only answer that cannot leave the client waiting forever.
    if (err instanceof BrokerError) {
      // An infrastructure fault outside any per-partition boundary (e.g. Redis down): closing
      // makes the client reconnect and retry, which is what a retriable error would do.
      this.#log.warn({ err: err.message, apiKey: header.apiKey }, 'request failed on an infrastructure fault; closing connection');
    } else {
      this.#log.error({ err, apiKey: header.apiKey, apiVersion: header.apiVersion }, 'handler failed; closing connection');
    }
    this.close('handler failure');
  }

  #complete(slot: Slot, header: RequestHeader, result: unknown): void {
    if (this.#closed) return;
    // Handled: the request's bytes go back to the budget (the response has bounds of its own).
    this.#budget.release(slot.bytes);
    slot.bytes = 0;
    if (result !== NO_RESPONSE) {
      try {
        slot.chunks = encodeResponse(header.apiKey as never, header.apiVersion, header.correlationId, result as never);
      } catch (err) {
        this.#handlerFailed(header, err);
        return;
      }
    }
    slot.done = true;
    this.#flushSlots();
  }

  #answerUnsupportedApiVersions(correlationId: number): void {
    // Kafka answers an ApiVersions request it cannot parse with a v0 response carrying
    // UNSUPPORTED_VERSION and its supported ranges; the client retries with a version it sees.
    const slot: Slot = { done: true, chunks: null, bytes: 0 };
    slot.chunks = encodeResponse(ApiKey.ApiVersions, 0, correlationId, {
      errorCode: ErrorCode.UNSUPPORTED_VERSION,
      apiKeys: apiVersionsKeys(this.#handlers),
      throttleTimeMs: 0,
      supportedFeatures: [],
      finalizedFeaturesEpoch: -1n,
      finalizedFeatures: [],
      zkMigrationReady: false,
    });
    this.#slots.push(slot);
    this.#inflight++;
    this.#flushSlots();
  }

  #flushSlots(): void {
    const socket = this.#socket;
    let corked = false;
    while (this.#slots.length > 0 && this.#slots[0]!.done) {
      const slot = this.#slots.shift()!;
      this.#inflight--;
      if (slot.chunks) {
        if (!corked) {
          socket.cork();
          corked = true;
        }
        for (const c of slot.chunks) socket.write(c);
      }
    }
    if (corked) process.nextTick(() => socket.uncork());
    this.#updateReading();
  }

  /**
   * Pauses or resumes reading: paused while draining, while a frame waits for the request
   * budget, or while in-flight requests or queued response bytes are over their bounds.
   */
  #updateReading(): void {
    if (this.#closed) return;
    const cfg = this.#limits;
    const pause =
      this.#stopped ||
      this.#services.draining ||
      this.#budget.waiting ||
      this.#inflight >= cfg.maxInflightRequests ||
      this.#socket.writableLength > cfg.maxQueuedResponseBytes;
    if (pause === this.#paused) return;
    this.#paused = pause;
    if (pause) this.#socket.pause();
    else this.#socket.resume();
  }
}
