/** The theme the person picked; `system` follows `prefers-color-scheme`. */
export type ThemeChoice = 'system' | 'light' | 'dark'

const THEME_STORAGE = 'tribler.theme'

/** The stored theme choice, `system` when none (or storage is unavailable). */
export function loadTheme(): ThemeChoice {
  try {
    const value = localStorage.getItem(THEME_STORAGE)
    return value === 'light' || value === 'dark' ? value : 'system'
  } catch {
    return 'system'
  }
}

/** Remembers the theme choice. */
export function saveTheme(choice: ThemeChoice): void {
  try {
    if (choice === 'system') localStorage.removeItem(THEME_STORAGE)
    else localStorage.setItem(THEME_STORAGE, choice)
  } catch {
    // Without storage the choice lasts for this page only.
  }
}

/** The concrete theme for a choice. */
export function resolveTheme(choice: ThemeChoice, systemDark: boolean): 'light' | 'dark' {
  return choice === 'system' ? (systemDark ? 'dark' : 'light') : choice
}
