import { useEffect, useMemo, useState } from 'react'
import { ApiClient } from './api/client.js'
import { ApiKeyDialog } from './components/api-key-dialog.js'
import { Icon, type IconName } from './components/icons.js'
import { ConnectionBanner, CoreStatePill, TotalRates } from './components/status.js'
import { ThemeSwitch, useTheme } from './components/theme.js'
import { ToastProvider } from './components/toasts.js'
import { DebugPage } from './pages/debug.js'
import { DownloadsPage } from './pages/downloads.js'
import { SettingsPage } from './pages/settings.js'
import { CoreProvider, useCore } from './state/core.js'
import { DownloadsProvider } from './state/downloads.js'

type Route = 'downloads' | 'settings' | 'debug'

const ROUTES: { route: Route; label: string; icon: IconName }[] = [
  { route: 'downloads', label: 'Downloads', icon: 'download' },
  { route: 'settings', label: 'Settings', icon: 'settings' },
  { route: 'debug', label: 'Debug', icon: 'bug' },
]

function routeFromHash(): Route {
  const name = window.location.hash.replace(/^#\/?/, '')
  return ROUTES.some((r) => r.route === name) ? (name as Route) : 'downloads'
}

function useRoute(): Route {
  const [route, setRoute] = useState(routeFromHash)
  useEffect(() => {
    const onChange = () => setRoute(routeFromHash())
    window.addEventListener('hashchange', onChange)
    return () => window.removeEventListener('hashchange', onChange)
  }, [])
  return route
}

interface KeyRequest {
  reason: 'missing' | 'rejected'
  resolve(key: string | null): void
}

/** The whole GUI: navigation, status bar, the page of the current route, and the API-key prompt. */
export function App() {
  const api = useMemo(() => new ApiClient(), [])
  const [keyRequest, setKeyRequest] = useState<KeyRequest>()
  useEffect(() => {
    api.setKeyPrompt((reason) => new Promise((resolve) => setKeyRequest({ reason, resolve })))
    return () => api.setKeyPrompt(undefined)
  }, [api])

  return (
    <ToastProvider>
      <CoreProvider api={api}>
        <DownloadsProvider>
          <Shell />
          {keyRequest && (
            <ApiKeyDialog
              reason={keyRequest.reason}
              onSubmit={(key) => {
                keyRequest.resolve(key)
                setKeyRequest(undefined)
              }}
              onCancel={() => {
                keyRequest.resolve(null)
                setKeyRequest(undefined)
              }}
            />
          )}
        </DownloadsProvider>
      </CoreProvider>
    </ToastProvider>
  )
}

function Shell() {
  const route = useRoute()
  const [theme, setTheme] = useTheme()
  const { version } = useCore()
  useEffect(() => {
    const label = ROUTES.find((r) => r.route === route)?.label ?? ''
    document.title = `${label} · Tribler`
  }, [route])

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="Main">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-name">Tribler</span>
        </div>
        <ul>
          {ROUTES.map((r) => (
            <li key={r.route}>
              <a
                href={`#/${r.route}`}
                aria-current={route === r.route ? 'page' : undefined}
                className="nav-link"
              >
                <Icon name={r.icon} />
                <span>{r.label}</span>
              </a>
            </li>
          ))}
        </ul>
        <div className="sidebar-footer">
          <ThemeSwitch choice={theme} onChange={setTheme} />
          {version && <span className="muted small">core {version}</span>}
        </div>
      </nav>
      <div className="main-column">
        <header className="topbar">
          <CoreStatePill />
          <div className="spacer" />
          <TotalRates />
        </header>
        <ConnectionBanner />
        <main id="main" className="page" tabIndex={-1}>
          {route === 'downloads' && <DownloadsPage />}
          {route === 'settings' && <SettingsPage />}
          {route === 'debug' && <DebugPage />}
        </main>
      </div>
    </div>
  )
}
