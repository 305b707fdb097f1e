import { useCallback, useEffect, useMemo, useState } from 'react'
import { isStatus } from '../api/client.js'
import type { SettingsResponse } from '../api/types.js'
import { Card } from '../components/card.js'
import { useNotify } from '../components/toasts.js'
import {
  changedTree,
  type FieldSpec,
  type FormValue,
  fieldId,
  groupsFor,
  leaf,
  parseField,
  toFormValue,
} from '../lib/settings.js'
import { useCore } from '../state/core.js'

type Load =
  | { kind: 'loading' }
  | { kind: 'ready'; data: SettingsResponse }
  | { kind: 'failed'; message: string }

/** The settings page: the settings tree in grouped, validated forms saved with POST /settings. */
export function SettingsPage() {
  const { api, state } = useCore()
  const notify = useNotify()
  const [load, setLoad] = useState<Load>({ kind: 'loading' })
  const [form, setForm] = useState<Record<string, FormValue>>({})
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [saveError, setSaveError] = useState('')
  const [saving, setSaving] = useState(false)

  const started = state?.state === 'STARTED'
  const reload = useCallback(() => {
    api.get<SettingsResponse>('/settings').then(
      (data) => {
        setLoad({ kind: 'ready', data })
        setForm({})
        setErrors({})
      },
      (err: unknown) =>
        setLoad({
          kind: 'failed',
          message: isStatus(err, 404)
            ? 'The core offers its settings once it has started.'
            : err instanceof Error
              ? err.message
              : String(err),
        }),
    )
  }, [api])
  useEffect(() => {
    if (started) reload()
  }, [started, reload])

  const tree = load.kind === 'ready' ? load.data.settings : {}
  const ports = load.kind === 'ready' ? load.data.ports : {}
  const groups = useMemo(() => groupsFor(tree), [tree])
  const fields = useMemo(() => groups.flatMap((g) => g.fields), [groups])
  const pending = useMemo(() => changedTree(fields, tree, form), [fields, tree, form])
  const changeCount = pending.ok ? pending.count : Object.keys(form).length

  const currentValue = (f: FieldSpec): FormValue => form[fieldId(f)] ?? toFormValue(f, leaf(tree, f))
  const edit = (f: FieldSpec, value: FormValue) => {
    const id = fieldId(f)
    setForm((all) => ({ ...all, [id]: value }))
    const parsed = parseField(f, value)
    setErrors((all) => {
      const { [id]: _, ...rest } = all
      return parsed.ok ? rest : { ...rest, [id]: parsed.error }
    })
  }

  const save = async () => {
    const result = changedTree(fields, tree, form)
    if (!result.ok) {
      setErrors(result.errors)
      setSaveError('Some values are not valid; they are marked below.')
      return
    }
    if (result.count === 0) return
    setSaving(true)
    setSaveError('')
    try {
      await api.postJson('/settings', result.changes)
      // A new API key applies to this interface's own requests from now on.
      const apiSection = result.changes.api
      if (apiSection && Object.hasOwn(apiSection, 'key')) api.apiKey = String(apiSection.key ?? '')
      notify('success', `Settings saved (${result.count} ${result.count === 1 ? 'change' : 'changes'})`)
      reload()
    } catch (err) {
      setSaveError(err instanceof Error ? err.message : String(err))
    } finally {
      setSaving(false)
    }
  }

  if (load.kind !== 'ready') {
    return (
      <div className="settings-page">
        <div className="page-header">
          <h1>Settings</h1>
        </div>
        <div className="empty">
          <h2>{load.kind === 'loading' ? 'Loading settings…' : 'Settings are not available'}</h2>
          {load.kind === 'failed' && <p>{load.message}</p>}
        </div>
      </div>
    )
  }

  return (
    <form
      className="settings-page"
      onSubmit={(event) => {
        event.preventDefault()
        void save()
      }}
      noValidate
    >
      <div className="page-header">
        <h1>Settings</h1>
        <nav className="settings-nav" aria-label="Settings sections">
          {groups.map((g) => (
            <button key={g.id} type="button" className="chip" onClick={() => jumpTo(g.id)}>
              {g.title}
            </button>
          ))}
        </nav>
      </div>
      <div className="settings-scroll">
        {groups.map((group) => (
          <Card
            key={group.id}
            id={`settings-${group.id}`}
            title={group.title}
            description={group.description}
          >
            <div className="settings-grid">
              {group.fields.map((f) => (
                <SettingField
                  key={fieldId(f)}
                  field={f}
                  value={currentValue(f)}
                  error={errors[fieldId(f)]}
                  runtimePort={ports[`${f.section}~${f.key}`]}
                  onChange={(v) => edit(f, v)}
                />
              ))}
            </div>
          </Card>
        ))}
      </div>
      <div className={`save-bar ${changeCount > 0 || saveError ? 'visible' : ''}`}>
        {saveError ? (
          <span className="form-error" role="alert" data-testid="settings-error">
            {saveError}
          </span>
        ) : (
          <span className="muted" aria-live="polite">
            {changeCount > 0
              ? `${changeCount} unsaved ${changeCount === 1 ? 'change' : 'changes'}`
              : 'No changes'}
          </span>
        )}
        <div className="spacer" />
        <button
          type="button"
          className="button"
          disabled={changeCount === 0}
          onClick={() => {
            setForm({})
            setErrors({})
            setSaveError('')
          }}
        >
          Discard
        </button>
        <button
          type="submit"
          className="button primary"
          disabled={saving || changeCount === 0}
          data-testid="settings-save"
        >
          {saving ? 'Saving…' : 'Save'}
        </button>
      </div>
    </form>
  )
}

function jumpTo(id: string) {
  const section = document.getElementById(`settings-${id}`)
  section?.scrollIntoView({ behavior: 'smooth', block: 'start' })
  section?.querySelector<HTMLElement>('input, select')?.focus({ preventScroll: true })
}

function SettingField({
  field: f,
  value,
  error,
  runtimePort,
  onChange,
}: {
  field: FieldSpec
  value: FormValue
  error: string | undefined
  runtimePort: number | undefined
  onChange(value: FormValue): void
}) {
  const id = `setting-${f.section}-${f.key}`
  const hint = [f.help, runtimePort !== undefined ? `in use: ${runtimePort}` : undefined]
    .filter(Boolean)
    .join(' · ')
  if (f.kind === 'bool') {
    return (
      <label className="switch-field" htmlFor={id}>
        <span className="switch-text">
          <span className="field-label">{f.label}</span>
          {hint && <span className="muted small">{hint}</span>}
        </span>
        <input
          id={id}
          type="checkbox"
          role="switch"
          aria-checked={value === true}
          className="switch"
          checked={value === true}
          onChange={(e) => onChange(e.target.checked)}
          data-setting={`${f.section}.${f.key}`}
        />
      </label>
    )
  }
  const common = {
    id,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': error || hint ? `${id}-hint` : undefined,
    'data-setting': `${f.section}.${f.key}`,
  }
  return (
    <div className={`field ${error ? 'invalid' : ''}`}>
      <label className="field-label" htmlFor={id}>
        {f.label}
      </label>
      <div className="input-with-unit">
        {f.kind === 'select' ? (
          <select {...common} value={String(value)} onChange={(e) => onChange(e.target.value)}>
            {!f.options?.some((o) => String(o.value) === String(value)) && (
              <option value={String(value)}>{String(value)}</option>
            )}
            {f.options?.map((o) => (
              <option key={o.value} value={String(o.value)}>
                {o.label}
              </option>
            ))}
          </select>
        ) : (
          <input
            {...common}
            type={f.kind === 'secret' ? 'password' : 'text'}
            inputMode={f.kind === 'int' ? 'numeric' : f.kind === 'float' ? 'decimal' : undefined}
            autoComplete="off"
            spellCheck={false}
            value={String(value)}
            onChange={(e) => onChange(e.target.value)}
          />
        )}
        {f.unit && <span className="unit">{f.unit}</span>}
      </div>
      {(error || hint) && (
        <span id={`${id}-hint`} className={error ? 'field-error' : 'muted small'}>
          {error ?? hint}
        </span>
      )}
    </div>
  )
}
