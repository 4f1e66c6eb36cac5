/** Applies the host's theme and locale to the document (CSS variables follow `data-theme`). */
import { watchEffect } from 'vue'
import { useSessionStore } from '../stores/session.ts'

export function useHostTheme(): void {
  const session = useSessionStore()
  watchEffect(() => {
    const root = document.documentElement
    const context = session.context
    root.dataset.theme = context?.theme ?? 'light'
    if (context?.locale) root.lang = context.locale
  })
}
