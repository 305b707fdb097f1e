import { createContext, type ReactNode, useCallback, useContext, useMemo, useRef, useState } from 'react'
import { Icon } from './icons.js'

/** A short notice in the corner: `error`s stay until dismissed, others fade after a few seconds. */
interface Toast {
  id: number
  kind: 'info' | 'success' | 'error'
  text: string
}

type Notify = (kind: Toast['kind'], text: string) => void

const ToastContext = createContext<Notify>(() => {})

const TOAST_MS = 4000

/** The function that shows a toast. */
export function useNotify(): Notify {
  return useContext(ToastContext)
}

/** Holds and renders the toasts of the GUI. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([])
  const nextId = useRef(1)
  const dismiss = useCallback((id: number) => setToasts((all) => all.filter((t) => t.id !== id)), [])
  const notify = useCallback<Notify>(
    (kind, text) => {
      const id = nextId.current++
      setToasts((all) => [...all.slice(-4), { id, kind, text }])
      if (kind !== 'error') setTimeout(() => dismiss(id), TOAST_MS)
    },
    [dismiss],
  )
  const value = useMemo(() => notify, [notify])
  return (
    <ToastContext.Provider value={value}>
      {children}
      <div className="toasts" aria-live="polite">
        {toasts.map((toast) => (
          <div
            key={toast.id}
            className={`toast toast-${toast.kind}`}
            role={toast.kind === 'error' ? 'alert' : 'status'}
          >
            <span>{toast.text}</span>
            <button
              type="button"
              className="icon-button"
              aria-label="Dismiss"
              onClick={() => dismiss(toast.id)}
            >
              <Icon name="close" size={14} />
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  )
}
