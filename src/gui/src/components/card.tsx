import type { ReactNode } from 'react'

/** A titled panel of a page. */
export function Card({
  id,
  title,
  description,
  testId,
  children,
}: {
  id: string
  title: string
  description?: string
  testId?: string
  children: ReactNode
}) {
  return (
    <section id={id} className="card" aria-labelledby={`${id}-title`} data-testid={testId}>
      <header className="card-header">
        <h2 id={`${id}-title`}>{title}</h2>
        {description && <p className="muted">{description}</p>}
      </header>
      {children}
    </section>
  )
}
