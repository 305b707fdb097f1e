import { useEffect, useState } from 'react'
import { loadTheme, resolveTheme, saveTheme, type ThemeChoice } from '../lib/theme.js'
import { Icon, type IconName } from './icons.js'

const CHOICES: { value: ThemeChoice; label: string; icon: IconName }[] = [
  { value: 'system', label: 'System theme', icon: 'monitor' },
  { value: 'light', label: 'Light theme', icon: 'sun' },
  { value: 'dark', label: 'Dark theme', icon: 'moon' },
]

/** Applies the remembered theme to the page and follows the system while the choice is `system`. */
export function useTheme(): [ThemeChoice, (choice: ThemeChoice) => void] {
  const [choice, setChoice] = useState<ThemeChoice>(loadTheme)
  useEffect(() => {
    const media = window.matchMedia('(prefers-color-scheme: dark)')
    const apply = () => {
      document.documentElement.dataset.theme = resolveTheme(choice, media.matches)
    }
    apply()
    media.addEventListener('change', apply)
    return () => media.removeEventListener('change', apply)
  }, [choice])
  return [
    choice,
    (next) => {
      saveTheme(next)
      setChoice(next)
    },
  ]
}

/** Three-way switch between the system, light and dark themes. */
export function ThemeSwitch({
  choice,
  onChange,
}: {
  choice: ThemeChoice
  onChange(choice: ThemeChoice): void
}) {
  return (
    <fieldset className="segmented" aria-label="Theme" data-testid="theme-switch">
      {CHOICES.map((c) => (
        <button
          key={c.value}
          type="button"
          className="segment"
          aria-pressed={choice === c.value}
          aria-label={c.label}
          title={c.label}
          data-theme-choice={c.value}
          onClick={() => onChange(c.value)}
        >
          <Icon name={c.icon} size={16} />
        </button>
      ))}
    </fieldset>
  )
}
