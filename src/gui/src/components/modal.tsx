import { type ReactNode, useEffect, useId, useRef } from 'react'
import { Icon } from './icons.js'

/** Props of `Modal`. */
export interface ModalProps {
  title: string
  onClose(): void
  children: ReactNode
  footer?: ReactNode
  size?: 'small' | 'medium' | 'large'
  /** Test id of the dialog element. */
  testId?: string
}

/**
 * A modal dialog on the native `<dialog>` element: focus stays inside, Escape and the close button call `onClose`.
 */
export function Modal({ title, onClose, children, footer, size = 'medium', testId }: ModalProps) {
  const ref = useRef<HTMLDialogElement>(null)
  const titleId = useId()
  useEffect(() => {
    const dialog = ref.current
    if (dialog && !dialog.open) dialog.showModal()
    // showModal focuses the first focusable element (the close button); the field a dialog is for comes first.
    dialog?.querySelector<HTMLElement>('[data-autofocus]')?.focus()
    return () => dialog?.close()
  }, [])
  return (
    <dialog
      ref={ref}
      className={`modal modal-${size}`}
      aria-labelledby={titleId}
      data-testid={testId}
      onCancel={(event) => {
        event.preventDefault()
        onClose()
      }}
    >
      <header className="modal-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="icon-button" aria-label="Close" onClick={onClose}>
          <Icon name="close" />
        </button>
      </header>
      <div className="modal-body">{children}</div>
      {footer && <footer className="modal-footer">{footer}</footer>}
    </dialog>
  )
}
