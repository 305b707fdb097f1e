import { useState } from 'react'
import { Modal } from './modal.js'

/**
 * Asks for the core's API key after a 401. The key is kept in localStorage and sent as `X-Api-Key`.
 */
export function ApiKeyDialog({
  reason,
  onSubmit,
  onCancel,
}: {
  reason: 'missing' | 'rejected'
  onSubmit(key: string): void
  onCancel(): void
}) {
  const [key, setKey] = useState('')
  return (
    <Modal title="API key required" onClose={onCancel} size="small" testId="api-key-dialog">
      <form
        className="stack"
        onSubmit={(event) => {
          event.preventDefault()
          if (key.trim() !== '') onSubmit(key.trim())
        }}
      >
        <p>
          {reason === 'rejected'
            ? 'The core rejected the stored API key. Enter the current key to continue.'
            : 'This core is protected by an API key. Enter it once; it is remembered in this browser.'}
        </p>
        <label className="field">
          <span className="field-label">API key</span>
          <input
            type="password"
            autoComplete="off"
            data-autofocus
            value={key}
            onChange={(e) => setKey(e.target.value)}
            name="api-key"
          />
        </label>
        <div className="row end">
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={key.trim() === ''}>
            Connect
          </button>
        </div>
      </form>
    </Modal>
  )
}
