import { useEffect, useState } from 'react'
import type { CoreState } from '../api/types.js'
import { formatRate } from '../lib/format.js'
import { useCore } from '../state/core.js'
import { useDownloads } from '../state/downloads.js'
import { Icon } from './icons.js'

const STATE_LABEL: Record<CoreState['state'], string> = {
  STARTING: 'Starting',
  UPGRADING: 'Upgrading',
  STARTED: 'Running',
  EXCEPTION: 'Error',
}

/** The core state as a coloured pill, with the startup step, upgrade progress or exception as its detail. */
export function CoreStatePill() {
  const { state, stream, upgradeText, shutdownText } = useCore()
  let tone = 'neutral'
  let label = 'Connecting'
  let detail = ''
  if (shutdownText !== undefined) {
    tone = 'warn'
    label = 'Shutting down'
    detail = shutdownText
  } else if (stream.kind === 'lost') {
    tone = 'bad'
    label = 'Disconnected'
  } else if (state) {
    label = STATE_LABEL[state.state] ?? state.state
    tone = state.state === 'STARTED' ? 'good' : state.state === 'EXCEPTION' ? 'bad' : 'warn'
    detail =
      state.state === 'UPGRADING'
        ? upgradeText || state.readable_state
        : state.state === 'EXCEPTION'
          ? (state.last_exception ?? '')
          : state.state === 'STARTING'
            ? state.readable_state
            : ''
  }
  return (
    <div
      className={`pill pill-${tone}`}
      data-testid="core-state"
      data-state={state?.state ?? ''}
      title={detail}
    >
      <span className="pill-dot" aria-hidden="true" />
      <span>{label}</span>
      {detail && <span className="pill-detail">{detail}</span>}
    </div>
  )
}

/** Total download and upload rate over all downloads. */
export function TotalRates() {
  const { downloads, availability } = useDownloads()
  if (availability !== 'ok') return null
  let down = 0
  let up = 0
  for (const d of downloads) {
    down += d.speed_down || 0
    up += d.speed_up || 0
  }
  return (
    <div className="rates" data-testid="total-rates">
      <span title="Total download rate">
        <Icon name="download" size={15} /> {formatRate(down)}
      </span>
      <span title="Total upload rate">
        <Icon name="upload" size={15} /> {formatRate(up)}
      </span>
    </div>
  )
}

/**
 * A banner while the events stream is down (with the reconnect countdown), and a short "restored" notice after.
 */
export function ConnectionBanner() {
  const { stream } = useCore()
  const [now, setNow] = useState(Date.now())
  const [wasLost, setWasLost] = useState(false)
  const [restored, setRestored] = useState(false)

  useEffect(() => {
    if (stream.kind === 'lost') {
      setWasLost(true)
      setRestored(false)
      const timer = setInterval(() => setNow(Date.now()), 250)
      return () => clearInterval(timer)
    }
    if (stream.kind === 'open' && wasLost) {
      setWasLost(false)
      setRestored(true)
      const timer = setTimeout(() => setRestored(false), 3000)
      return () => clearTimeout(timer)
    }
  }, [stream, wasLost])

  if (stream.kind === 'lost' || (stream.kind === 'connecting' && wasLost)) {
    const seconds = stream.kind === 'lost' ? Math.max(0, Math.ceil((stream.retryAtMs - now) / 1000)) : 0
    return (
      <div className="banner banner-bad" role="alert" data-testid="connection-banner" data-connection="lost">
        <Icon name="alert" size={16} />
        <span>
          Connection to the Tribler core lost.{' '}
          {seconds > 0 ? `Reconnecting in ${seconds}s…` : 'Reconnecting…'}
        </span>
      </div>
    )
  }
  if (restored) {
    return (
      <div
        className="banner banner-good"
        role="status"
        data-testid="connection-banner"
        data-connection="restored"
      >
        <span>Connection restored.</span>
      </div>
    )
  }
  return null
}
