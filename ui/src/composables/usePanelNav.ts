/**
 * The panel's sections and what a section may ask of the navigation between them: show another
 * section, and — for the mappings editor — know that Ctrl+S was pressed elsewhere in the panel
 * while its changes were unsaved. Provided by App.vue; absent (null) when a section is mounted on
 * its own, as in tests.
 */
import { inject, type InjectionKey, type Ref } from 'vue'

export const SECTIONS = [
  { id: 'connection', label: 'Connection' },
  { id: 'rules', label: 'Rules' },
  { id: 'fields', label: 'Fields' },
  { id: 'import', label: 'Import' },
  { id: 'activity', label: 'Activity' },
  { id: 'platform', label: 'Kit → App Station' },
] as const

export type SectionId = (typeof SECTIONS)[number]['id']
/** The sections that edit the mappings document, with its one save bar. */
export type EditorSection = Extract<SectionId, 'rules' | 'fields'>

export interface PanelNav {
  current: Readonly<Ref<SectionId>>
  show(section: SectionId): void
  /** The editor section shown last: where Ctrl+S elsewhere brings the owner back to save. */
  lastEditor: Ref<EditorSection>
  /** Set when Ctrl+S was pressed outside the editor with unsaved changes; the editor saves and clears it. */
  saveRequested: Ref<boolean>
}

export const PANEL_NAV: InjectionKey<PanelNav> = Symbol('panel-nav')

export const usePanelNav = (): PanelNav | null => inject(PANEL_NAV, null)
