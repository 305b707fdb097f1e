import { TriblerError } from '../../common/index.js'

/** Why a bandwidth request failed. */
export type BandwidthErrorCode =
  /** A rate that is not a finite number >= 0, or a request size that is not a positive integer. */
  | 'INVALID_ARGUMENT'
  /** The manager was stopped while the request waited. */
  | 'STOPPED'

/** Errors of the bandwidth subsystem; match `err.code`. */
export class BandwidthError extends TriblerError<BandwidthErrorCode> {}

/** Called once the bytes of a {@link BandwidthManager.request} are granted. */
export type GrantCallback = () => void

/** Cancels a queued request (a no-op once granted). */
export type CancelRequest = () => void
